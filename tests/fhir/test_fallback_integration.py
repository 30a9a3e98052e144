"""complete_prefetch against a real FHIR R4 server (sekmet-fhir) on a loopback port.

The server is started once for the session by ``tests/fhir/fhir_server.py`` and holds
the restless back example's patient plus a paging patient. These tests check what the
fakes in test_client.py cannot: real query strings, real searchset paging and
``_include``, a real 401, a refused connection and a server that never answers.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from cds.errors import PrefetchUnavailableError
from cds.fhir import collect_record
from cds.fhir.client import FetchPolicy, complete_prefetch
from cds.hooks import SERVICES, evaluate, parse_request
from cds.hooks.services import PREFETCH, REQUIRED
from cds.rulebase import RuleBase
from tests.conftest import load_example
from tests.fhir.fhir_server import (  # registers the session fixture ``fhir_server``
    PAGING_ORDERS,
    PAGING_PATIENT,
    FhirTestServer,
    free_port,
    sekmet_fhir_server,  # noqa: F401
)

POLICY = FetchPolicy(request_timeout=3.0, overall_timeout=6.0)


def complete(
    server: FhirTestServer,
    *,
    base_url: str | None = None,
    token: str | None = "",
    context: Mapping[str, Any] | None = None,
    templates: Mapping[str, str] = PREFETCH,
    required: tuple[str, ...] = REQUIRED,
    prefetch: Mapping[str, Any] | None = None,
    policy: FetchPolicy = POLICY,
    requests: list[httpx.Request] | None = None,
) -> dict[str, Any]:
    """Run complete_prefetch with a real client; ``token=""`` means the server's token."""

    async def record(request: httpx.Request) -> None:
        if requests is not None:
            requests.append(request)

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
            return await complete_prefetch(
                client,
                fhir_server=base_url or server.base_url,
                access_token=server.token if token == "" else token,
                context=context or server.example["context"],
                templates=templates,
                required=required,
                prefetch=prefetch,
                policy=policy,
            )

    return asyncio.run(run())


def resource_ids(bundle: Mapping[str, Any], kind: str) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_everything_missing_is_fetched(fhir_server: FhirTestServer) -> None:
    result = complete(fhir_server, prefetch=None)
    assert set(result) == {"medications", "conditions"}
    assert result["medications"]["type"] == "searchset"
    assert resource_ids(result["medications"], "MedicationRequest") == ["amisulpride-600"]
    assert resource_ids(result["conditions"], "Condition") == ["back-itching"]
    stored = fhir_server.example["prefetch"]
    assert (
        result["medications"]["entry"][0]["resource"]["dosageInstruction"]
        == (stored["medications"]["entry"][0]["resource"]["dosageInstruction"])
    )


def test_fetched_prefetch_gives_the_example_its_card(
    fhir_server: FhirTestServer, rulebase: RuleBase
) -> None:
    """The example with its prefetch taken away: fetched back, same dose review card."""
    body = load_example("restless-back-amisulpride.json")
    del body["prefetch"]
    request = parse_request(body)
    service = SERVICES["restless-order-select"]
    completed = complete(fhir_server, prefetch=request.prefetch, required=service.required)
    result = evaluate(
        request.model_copy(update={"prefetch": completed}),
        service,
        rulebase,
        source_label="restless-cds",
        override_system="urn:restless-cds:override-reason",
    )
    assert [c["extension"]["restless-cds-rule"] for c in result.cards] == [
        "dose-review.draft-order"
    ]
    assert result.cards[0]["indicator"] == "warning"
    assert result.extraction.issues == []
    record = collect_record(
        None, completed, service.required, patient_id=request.context["patientId"]
    )
    assert [r["id"] for r in record.medication_requests] == ["amisulpride-600"]


def test_only_missing_keys_are_fetched(fhir_server: FhirTestServer) -> None:
    requests: list[httpx.Request] = []
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    result = complete(
        fhir_server, prefetch={"medications": None, "conditions": outcome}, requests=requests
    )
    assert result["medications"] is None
    assert resource_ids(result["conditions"], "Condition") == ["back-itching"]
    assert [r.url.path for r in requests] == ["/fhir/Condition"]


def test_a_read_template(fhir_server: FhirTestServer) -> None:
    result = complete(fhir_server, required=("patient",))
    assert result["patient"]["resourceType"] == "Patient"
    assert result["patient"]["id"] == fhir_server.patient_id


PAGED = {
    "medications": "MedicationRequest?patient={{context.patientId}}&_count=1"
    "&_include=MedicationRequest:medication"
}


def test_paging_follows_next_links(fhir_server: FhirTestServer) -> None:
    requests: list[httpx.Request] = []
    context = {"patientId": PAGING_PATIENT, "userId": "Practitioner/1"}
    result = complete(
        fhir_server, context=context, templates=PAGED, required=("medications",), requests=requests
    )
    merged = result["medications"]
    orders = [f"paging-order-{n}" for n in range(1, PAGING_ORDERS + 1)]
    assert sorted(resource_ids(merged, "MedicationRequest")) == orders
    assert resource_ids(merged, "Medication") == ["paracetamol-500"]  # once, not per page
    assert merged["total"] == PAGING_ORDERS
    assert "link" not in merged
    assert len(requests) == PAGING_ORDERS
    assert all(r.headers["Authorization"] == f"Bearer {fhir_server.token}" for r in requests)


def test_paging_stops_at_the_page_bound(fhir_server: FhirTestServer) -> None:
    requests: list[httpx.Request] = []
    context = {"patientId": PAGING_PATIENT, "userId": "Practitioner/1"}
    policy = FetchPolicy(max_pages=2)
    with pytest.raises(PrefetchUnavailableError) as info:
        complete(
            fhir_server,
            context=context,
            templates=PAGED,
            required=("medications",),
            policy=policy,
            requests=requests,
        )
    assert info.value.missing == ["medications"]
    assert len(requests) == 2


def test_next_links_to_another_origin_are_refused(fhir_server: FhirTestServer) -> None:
    """Called as ``localhost``, the server's next links name 127.0.0.1: another origin."""
    requests: list[httpx.Request] = []
    context = {"patientId": PAGING_PATIENT, "userId": "Practitioner/1"}
    with pytest.raises(PrefetchUnavailableError):
        complete(
            fhir_server,
            base_url=fhir_server.base_url.replace("127.0.0.1", "localhost"),
            context=context,
            templates=PAGED,
            required=("medications",),
            requests=requests,
        )
    assert [r.url.host for r in requests] == ["localhost"]


@pytest.mark.parametrize("token", [None, "not-the-token"], ids=["no-token", "wrong-token"])
def test_unauthorised_is_412(fhir_server: FhirTestServer, token: str | None) -> None:
    with pytest.raises(PrefetchUnavailableError) as info:
        complete(fhir_server, token=token)
    assert info.value.missing == ["medications", "conditions"]


def test_nothing_listening_is_412(fhir_server: FhirTestServer) -> None:
    with pytest.raises(PrefetchUnavailableError) as info:
        complete(fhir_server, base_url=f"http://127.0.0.1:{free_port()}/fhir")
    assert info.value.missing == ["medications", "conditions"]


@asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A loopback TCP server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def test_a_server_that_never_answers_times_out() -> None:
    async def run() -> None:
        async with silent_server() as base, httpx.AsyncClient() as client:
            await complete_prefetch(
                client,
                fhir_server=base,
                access_token="t",
                context={"patientId": "p"},
                templates=PREFETCH,
                required=REQUIRED,
                prefetch=None,
                policy=FetchPolicy(request_timeout=0.2),
            )

    with pytest.raises(PrefetchUnavailableError) as info:
        asyncio.run(run())
    assert info.value.missing == ["medications", "conditions"]


def test_allowlisted_server_is_used(fhir_server: FhirTestServer) -> None:
    policy = FetchPolicy(allowed_servers=(fhir_server.base_url,))
    assert set(complete(fhir_server, policy=policy)) == {"medications", "conditions"}
    other = FetchPolicy(allowed_servers=("https://fhir.example.org/r4",))
    with pytest.raises(PrefetchUnavailableError):
        complete(fhir_server, policy=other)


def test_the_token_is_in_no_log_record_and_no_exception(
    fhir_server: FhirTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Over real sockets, with every logger at DEBUG (httpx and httpcore included)."""
    for name in ("", "cds", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    complete(fhir_server)
    context = {"patientId": PAGING_PATIENT, "userId": "Practitioner/1"}
    errors = []
    cases: list[dict[str, Any]] = [
        {"base_url": fhir_server.base_url.replace("127.0.0.1", "localhost"), "templates": PAGED},
        {"base_url": f"http://127.0.0.1:{free_port()}/fhir"},
        {"required": ("patient",), "context": {"patientId": "no-such-patient"}},
    ]
    for kwargs in cases:
        with pytest.raises(PrefetchUnavailableError) as info:
            complete(fhir_server, **{"context": context, **kwargs})
        errors.append(info.value)
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    assert fhir_server.token not in caplog.text
    for record in caplog.records:
        assert fhir_server.token not in record.getMessage()
    for error in errors:
        text = "".join(traceback.format_exception(error))
        assert fhir_server.token not in text
        assert error.__context__ is None
