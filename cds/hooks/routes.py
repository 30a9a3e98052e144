"""HTTP routes: discovery and service calls (#discovery, #calling-a-cds-service)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Annotated, Any, Protocol

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from cds.cards import RULE_EXTENSION
from cds.engine import Firing
from cds.errors import PrefetchUnavailableError, Problem, UnknownServiceError
from cds.feedback import UnknownCardError, card_explanation, pseudonymise
from cds.fhir import complete_prefetch, keys_to_complete
from cds.hooks.auth import authenticate_client
from cds.hooks.errors import (
    BodyTimeoutError,
    ClientGoneError,
    PayloadTooLargeError,
    operation_outcome,
)
from cds.hooks.feedback import (
    CardLedger,
    assign_card_uuids,
    feedback_records,
    issued_records,
    parse_feedback,
    unknown_card_error,
)
from cds.hooks.language import HEADER as LANGUAGE_HEADER
from cds.hooks.language import content_language
from cds.hooks.models import CardsResponse, DiscoveryResponse, HookRequest
from cds.hooks.pipeline import Evaluation, evaluate, parse_request, validated_context
from cds.hooks.services import PREFETCH, SERVICES, Service
from cds.observability import metrics
from cds.rulebase import RuleBase
from cds.settings import Settings

__all__ = ["router", "with_fetched_prefetch"]

log = logging.getLogger("cds.hooks")
router = APIRouter(dependencies=[Depends(authenticate_client)])


# the dependencies are ``async`` so they run inline: FastAPI runs a plain ``def`` one in a
# worker thread, three thread hops per call for an attribute read each


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class CurrentRules(Protocol):
    """Whatever holds the rule base in use now (``cds.reload.RuleBaseHolder``)."""

    @property
    def current(self) -> RuleBase: ...

    def lease(self) -> AbstractContextManager[RuleBase]: ...


async def get_rules(request: Request) -> CurrentRules:
    holder: CurrentRules = request.app.state.rules
    return holder


async def get_service(service_id: str) -> Service:
    service = SERVICES.get(service_id)
    if service is None:
        raise UnknownServiceError("no CDS service with this id; see GET /cds-services")
    return service


SettingsDep = Annotated[Settings, Depends(get_settings)]
RulesDep = Annotated[CurrentRules, Depends(get_rules)]
ServiceDep = Annotated[Service, Depends(get_service)]


def _json(model: CardsResponse | DiscoveryResponse) -> Response:
    return Response(model.model_dump_json(exclude_none=True), media_type="application/json")


@router.get("/cds-services")
def discovery(rules: RulesDep) -> Response:
    version = rules.current.version
    services = [s.definition(version) for s in SERVICES.values()]
    return _json(DiscoveryResponse(services=services))


async def _read_body(request: Request, settings: Settings) -> bytes:
    """The body, within ``max_body_bytes`` (413) and ``body_read_timeout_seconds`` (408);
    a client gone mid-body raises ``ClientGoneError`` (one log line, no traceback)."""
    limit = settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body over {limit} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(settings.body_read_timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"request body over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeoutError(settings.body_read_timeout_seconds) from None
    except ClientDisconnect:
        raise ClientGoneError(size) from None
    return b"".join(chunks)


async def with_fetched_prefetch(
    request: Request, hook_request: HookRequest, service: Service
) -> HookRequest:
    """Fetch from the FHIR server what the client did not prefetch (412 if it cannot).

    The request is checked first: a body that will get a 400 fetches nothing."""
    validated_context(hook_request, service)
    missing = keys_to_complete(hook_request.prefetch, service.required)
    if not missing and not keys_to_complete(hook_request.prefetch, service.optional):
        return hook_request
    auth = hook_request.fhirAuthorization
    try:
        prefetch = await complete_prefetch(
            request.app.state.fhir_client,
            fhir_server=hook_request.fhirServer,
            access_token=auth.access_token if auth else None,
            context=hook_request.context,
            templates=PREFETCH,
            required=service.required,
            prefetch=hook_request.prefetch,
            policy=request.app.state.fetch_policy,
            optional=service.optional,
            recall=request.app.state.optional_recall,
        )
    except PrefetchUnavailableError:
        metrics.count_prefetch_fallback("unavailable")
        raise
    if missing:  # optional keys (labs) alone are not counted as a fallback
        metrics.count_prefetch_fallback("fetched")
    return hook_request.model_copy(update={"prefetch": prefetch})


async def call_service(request: Request) -> Response:
    """The hook call, as a plain Starlette route: FastAPI's dependency solving cost about
    0.4 ms a call. The same steps, in the same order: client JWT, service, rules, settings;
    errors go to the same handlers."""
    await authenticate_client(request)
    service = await get_service(request.path_params["service_id"])
    rules = await get_rules(request)
    settings = await get_settings(request)
    # the rules this request starts with serve it to the end, whatever a reload does
    with rules.lease() as rulebase:
        return await _call_with(request, service, rulebase, settings)


router.add_route("/cds-services/{service_id}", call_service, methods=["POST"])


async def _call_with(
    request: Request, service: Service, rulebase: RuleBase, settings: Settings
) -> Response:
    body = await _read_body(request, settings)
    language = content_language(request.headers.get(LANGUAGE_HEADER))
    hook_request = await with_fetched_prefetch(request, parse_request(body), service)
    with metrics.engine_sessions():
        result = evaluate(
            hook_request,
            service,
            rulebase,
            source_label=settings.source_label,
            override_system=settings.override_system_uri,
            language=language,
        )
    cards = result.cards
    if cards:  # most calls flag nothing and never touch the database
        cards = await _unsuppressed_and_recorded(
            request.app.state.card_ledger,
            cards,
            hook_request,
            service_id=service.id,
            pseudonym_key=request.app.state.pseudonym_key,
            rulebase=rulebase,
            firings=result.engine.firings,
        )
    response = CardsResponse.model_validate({"cards": cards})
    _observe(hook_request, service, result, cards, rulebase)
    return _json(response)


_PIPELINE_STAGES = {"request": "record", "facts": "facts", "engine": "engine", "cards": "cards"}


def _observe(
    hook_request: HookRequest,
    service: Service,
    result: Evaluation,
    cards: list[dict[str, Any]],
    rulebase: RuleBase,
) -> None:
    """Metrics and one log line per call: ids and counts, never patient data."""
    for stage, millis in result.timings_ms.items():
        metrics.observe_stage(_PIPELINE_STAGES.get(stage, stage), millis / 1000)
    for card in cards:
        metrics.count_card(card["extension"][RULE_EXTENSION], card["indicator"])
    for issue in result.extraction.issues:
        metrics.count_skipped_resource(issue.message.split(":")[0][:60])
        log.warning(
            "skipped input %s: %s",
            issue.where,
            issue.message,
            extra={"hookInstance": hook_request.hookInstance, "service": service.id},
        )
    log.info(
        "hook answered",
        extra={
            "hookInstance": hook_request.hookInstance,
            "service": service.id,
            "rules_version": rulebase.version,
            "outcome": "cards" if cards else "no-cards",
            "cards": len(cards),
            "suppressed": len(result.cards) - len(cards),
            "facts": len(result.extraction.facts),
            "skipped": result.extraction.left_out,
            "timings_ms": result.timings_ms,
        },
    )


async def _unsuppressed_and_recorded(
    ledger: CardLedger,
    cards: list[dict[str, Any]],
    hook_request: HookRequest,
    *,
    service_id: str,
    pseudonym_key: bytes,
    rulebase: RuleBase,
    firings: Sequence[Firing],
) -> list[dict[str, Any]]:
    """Drop the cards an "already addressed" override silenced for this patient; the
    rest are recorded right after the response."""
    # a patient id is unique only within its EHR: key the pseudonym by both
    patient = f"{hook_request.fhirServer or ''}|{hook_request.context['patientId']}"
    pseudonym = pseudonymise(pseudonym_key, patient)
    now = dt.datetime.now(dt.UTC)
    silenced = await ledger.silenced(pseudonym, now)
    kept = [c for c in cards if c["extension"][RULE_EXTENSION] not in silenced]
    if kept:
        assign_card_uuids(
            kept,
            service_id=service_id,
            hook_instance=hook_request.hookInstance,
            patient_pseudonym=pseudonym,
        )  # the same card in the same hook instance keeps its uuid (and its one row)
        ledger.record_soon(
            issued_records(
                kept,
                service_id=service_id,
                hook_instance=hook_request.hookInstance,
                patient_pseudonym=pseudonym,
                rulebase=rulebase,
                now=now,
                firings=firings,
            )
        )
    return kept


@router.post("/cds-services/{service_id}/feedback")
async def receive_feedback(
    request: Request, service: ServiceDep, settings: SettingsDep
) -> Response:
    """Store clinicians' outcomes; the same feedback twice is stored once."""
    feedback = parse_feedback(await _read_body(request, settings))
    ledger: CardLedger = request.app.state.card_ledger
    records = feedback_records(feedback)
    try:
        result = await ledger.add_feedback(service.id, records, settings.feedback_timeout_seconds)
    except UnknownCardError as exc:
        raise unknown_card_error(feedback, exc) from exc
    for record in records:
        rule = result.card_rules.get(record.card_uuid, "unknown")
        metrics.count_feedback(rule, record.outcome, record.override_code)
    log.info(
        "feedback stored",
        extra={"service": service.id, "stored": result.stored, "duplicates": result.duplicates},
    )
    body = orjson.dumps({"stored": result.stored, "duplicates": result.duplicates})
    return Response(body, media_type="application/json")


@router.get("/cds-services/{service_id}/cards/{card_uuid}/explanation")
async def explain_card(
    request: Request, service: ServiceDep, settings: SettingsDep, card_uuid: str
) -> Response:
    """Why a card this service issued fired: rule, rules version, structured facts bound.

    Behind the same client authentication as the hook calls; a uuid another service
    issued is "not found" here, as it is for feedback. A store that cannot answer within
    the feedback budget is a 503 with Retry-After."""
    ledger: CardLedger = request.app.state.card_ledger
    found = await ledger.read(
        "explanation",
        functools.partial(card_explanation, ledger.store, service.id, card_uuid),
        settings.feedback_timeout_seconds,
    )
    if found is None:
        problem = Problem("card_uuid", "no card with this uuid was issued by this service")
        return operation_outcome(404, [problem], code="not-found")
    return Response(orjson.dumps(found), media_type="application/json")
