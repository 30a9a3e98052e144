"""One hook call end to end, without HTTP: request -> records -> facts -> engine -> cards.

Used by the HTTP route and by ``restless-cds eval``; returns what each stage produced
and how long it took, so the CLI and the benchmark can show where the time goes.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from cds.cards import RenderContext, render_cards
from cds.engine import EngineResult
from cds.errors import Problem, RequestError
from cds.facts import (
    MAX_JSON_DEPTH,
    ChartReading,
    Extraction,
    RequestScope,
    aggregate_facts,
    extract_facts,
    first_hit,
    joined,
    to_engine,
)
from cds.fhir import collect_record
from cds.hooks.models import HookRequest
from cds.hooks.products import draft_products
from cds.hooks.services import Service
from cds.rulebase import RuleBase

__all__ = ["Evaluation", "evaluate", "parse_request", "problems_from", "validated_context"]


@dataclass
class Evaluation:
    cards: list[dict[str, Any]]
    extraction: Extraction
    engine: EngineResult
    timings_ms: dict[str, float] = field(default_factory=dict)


def problems_from(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Pydantic errors as ``field.path: message`` problems (never echoing the input)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(p) for p in error["loc"])
        where = f"{prefix}.{path}" if prefix and path else (prefix or path or "(body)")
        problems.append(Problem(where, error["msg"]))
    return problems


def _non_finite(_key: str, value: Any) -> bool:
    """A NaN or infinite number: JSON has none, but the slow path's parser reads ``NaN``,
    ``Infinity`` and ``1e999``; let through, they came back as ``null`` in a suggestion."""
    return isinstance(value, float) and not math.isfinite(value)


def parse_request(body: bytes | str | Mapping[str, Any]) -> HookRequest:
    """Validate a hook request body; ``RequestError`` names each bad field (a number
    that is not finite included).

    The body is parsed once into plain data by orjson, which refuses every number that
    is not finite (``NaN``, ``Infinity``, ``1e999``), and only the envelope's fields are
    validated (``context`` and ``prefetch`` are read later, field by field). Anything it
    does not accept takes the slow path, whose errors name the field."""
    if not isinstance(body, Mapping):
        fast = _parsed_fast(body)
        if fast is not None:
            return fast
    try:
        if isinstance(body, Mapping):
            request = HookRequest.model_validate(body)
        else:
            request = HookRequest.model_validate_json(body)
    except ValidationError as exc:
        raise RequestError(problems_from(exc)) from exc
    return _checked(request)


def _parsed_fast(body: bytes | str) -> HookRequest | None:
    """The request when orjson reads the body as an object nested at most ~250 levels
    (what orjson writes back) with a valid envelope; ``None`` to let the slow path
    explain what is wrong (its parser stops at 200 levels)."""
    try:
        data = orjson.loads(body)
        orjson.dumps(data)  # refuses nesting past 254 levels: nothing of ours recurses deeper
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        request = HookRequest.model_validate(data)
    except ValidationError:
        return None
    if request.fhirAuthorization is not None and request.fhirServer is None:
        raise RequestError([Problem("fhirServer", "required when fhirAuthorization is sent")])
    return request


def _checked(request: HookRequest) -> HookRequest:
    sections = {"context": request.context, "prefetch": request.prefetch}
    for name, section in sections.items():
        hit = first_hit(section, _non_finite)
        if hit is None:
            continue
        where = f"{name}.{hit.path or '(body)'}"
        if hit.too_deep:
            raise RequestError([Problem(where, f"nested over {MAX_JSON_DEPTH} levels")])
        message = "not a finite number (NaN, Infinity and 1e999 are not allowed)"
        raise RequestError([Problem(where, message)])
    if request.fhirAuthorization is not None and request.fhirServer is None:
        raise RequestError([Problem("fhirServer", "required when fhirAuthorization is sent")])
    return request


def validated_context(request: HookRequest, service: Service) -> BaseModel:
    """The hook's context for this service; ``RequestError`` names each bad field."""
    if request.hook != service.hook:
        message = f"service '{service.id}' answers '{service.hook}' only"
        raise RequestError([Problem("hook", message)])
    try:
        return service.context_model.model_validate(request.context)
    except ValidationError as exc:
        raise RequestError(problems_from(exc, "context")) from exc


def _by_type(facts: list[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for fact in facts:
        grouped.setdefault(str(fact["fact"]), []).append(fact)
    return grouped


def evaluate(
    request: HookRequest,
    service: Service,
    rulebase: RuleBase,
    *,
    source_label: str,
    override_system: str,
    today: dt.date | None = None,
    language: str | None = None,
) -> Evaluation:
    clock = time.perf_counter
    marks = [clock()]
    context = validated_context(request, service)
    patient_id = str(request.context["patientId"])
    ordered = getattr(context, "draftOrders", None)
    drafts = collect_record(ordered, None, (), patient_id=patient_id, language=language)
    marks.append(clock())
    today = today or dt.datetime.now(dt.UTC).date()
    cache = rulebase.fact_cache.scope(patient_id, today)
    if drafts.medications or drafts.conditions:  # read with the chart: they may bear on it
        record = collect_record(
            ordered,
            request.prefetch,
            service.required,
            patient_id=patient_id,
            language=language,
        )
        extraction = extract_facts(record, rulebase.knowledge, today, cache)
    else:
        chart = _chart_reading(
            request, service, rulebase, cache=cache, today=today, language=language
        )
        drafts.medications.update(chart.medications)
        read = extract_facts(drafts, rulebase.knowledge, today, cache)
        extraction = joined(read, chart.extraction)
    marks.append(clock())
    facts = [to_engine(f) for f in aggregate_facts(extraction.facts)]
    result = rulebase.engine_results.evaluate(rulebase.engine, facts)
    marks.append(clock())
    compiled = rulebase.compiled
    draft_orders = {
        f"MedicationRequest/{r['id']}": r
        for r in drafts.draft_orders
        if isinstance(r.get("id"), str)
    }
    render = RenderContext(
        templates=compiled.cards,
        sources=compiled.sources,
        rules_version=rulebase.version,
        source_label=source_label,
        override_system=override_system,
        draft_orders=draft_orders,
        derived=_by_type(result.derived_facts),
        draft_products=draft_products(extraction.facts, rulebase.knowledge.terminology),
    )
    cards = render_cards(result.outcomes, render)
    marks.append(clock())
    stages = ("request", "facts", "engine", "cards")
    timings = {
        s: round((b - a) * 1000, 3) for s, a, b in zip(stages, marks, marks[1:], strict=False)
    }
    return Evaluation(cards, extraction, result, timings)


def _chart_reading(
    request: HookRequest,
    service: Service,
    rulebase: RuleBase,
    *,
    cache: RequestScope,
    today: dt.date,
    language: str | None,
) -> ChartReading:
    """What the prefetch yields, from ``rulebase.chart_memo`` when this patient's chart
    was read before unchanged (order-select fires again on every change of the order);
    a chart lacking a required key raises ``PrefetchUnavailableError`` (412)."""
    patient_id = str(request.context["patientId"])
    memo = rulebase.chart_memo
    key = memo.key(
        request.prefetch,
        service=service.id,
        patient_id=patient_id,
        today=today,
        language=language,
    )
    found = memo.get(key)
    if found is not None:
        return found
    chart = collect_record(
        None, request.prefetch, service.required, patient_id=patient_id, language=language
    )
    extraction = extract_facts(chart, rulebase.knowledge, today, cache)
    reading = ChartReading(extraction, dict(chart.medications))
    memo.put(key, reading)
    return reading
