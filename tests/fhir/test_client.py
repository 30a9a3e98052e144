"""complete_prefetch: missing required prefetch fetched from the hook's FHIR server.

Every test here fakes the FHIR server with ``httpx.MockTransport``: ``FakeFhir`` answers
reads and searches from a dict, records each request it gets (URL and headers) and can be
told to fail, page or stall. No socket is opened; tests/fhir/test_fallback_integration.py
runs the same calls against a real FHIR server on loopback.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from cds.errors import PrefetchUnavailableError
from cds.fhir._templates import render_template
from cds.fhir.client import FetchPolicy, complete_prefetch, keys_to_complete
from cds.hooks.services import PREFETCH, REQUIRED

BASE = "https://fhir.example.org/r4"
TOKEN = "tok-9f3a7c-never-log-me"
CONTEXT = {"patientId": "rbs-50m", "userId": "Practitioner/psych-1", "encounterId": "enc-3"}
REQUIRED_LIST = list(REQUIRED)
FAST = FetchPolicy(request_timeout=0.5, overall_timeout=2.0)

Handler = Callable[[httpx.Request], Any]


def bundle(*resources: Mapping[str, Any], next_url: str | None = None) -> dict[str, Any]:
    entries = [
        {"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
    ]
    result: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "entry": entries,
        "link": [{"relation": "self", "url": f"{BASE}/x"}],
    }
    if next_url:
        result["link"].append({"relation": "next", "url": next_url})
    return result


def med(rid: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "active"}


def cond(rid: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": rid}


def outcome() -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


@dataclass
class FakeFhir:
    """A fake FHIR server: ``routes`` maps a path below /r4 to a JSON body (or a handler)."""

    routes: dict[str, Any] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/r4/")
        page = request.url.params.get("page")
        route = self.routes.get(f"{path}#{page}" if page else path)
        if route is None:
            return httpx.Response(404, json=outcome())
        if callable(route):
            response: httpx.Response = route(request)
            return response
        return httpx.Response(200, json=route)

    def paths(self) -> list[str]:
        return sorted(r.url.path for r in self.requests)


def standard() -> FakeFhir:
    return FakeFhir(
        {
            "MedicationRequest": bundle(med("amisulpride-600")),
            "Condition": bundle(cond("back-itching")),
            "Patient/rbs-50m": {"resourceType": "Patient", "id": "rbs-50m"},
        }
    )


def complete(
    handler: Handler,
    *,
    prefetch: Mapping[str, Any] | None = None,
    server: str | None = BASE,
    token: str | None = TOKEN,
    context: Mapping[str, Any] = CONTEXT,
    templates: Mapping[str, str] = PREFETCH,
    required: tuple[str, ...] = REQUIRED,
    policy: FetchPolicy = FAST,
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await complete_prefetch(
                client,
                fhir_server=server,
                access_token=token,
                context=context,
                templates=templates,
                required=required,
                prefetch=prefetch,
                policy=policy,
            )

    return asyncio.run(run())


def unavailable(handler: Handler, **kwargs: Any) -> list[str]:
    """The keys the 412 names."""
    with pytest.raises(PrefetchUnavailableError) as info:
        complete(handler, **kwargs)
    return info.value.missing


def ids(value: Mapping[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in value["entry"]]


# ---- what is fetched -------------------------------------------------------------------


def test_fetches_every_missing_required_key() -> None:
    fake = standard()
    result = complete(fake, prefetch=None)
    assert ids(result["medications"]) == ["amisulpride-600"]
    assert ids(result["conditions"]) == ["back-itching"]
    assert "patient" not in result  # not required: not worth a request
    assert fake.paths() == ["/r4/Condition", "/r4/MedicationRequest"]
    query = {r.url.path: dict(r.url.params) for r in fake.requests}
    assert query["/r4/MedicationRequest"] == {
        "patient": "rbs-50m",
        "status": "active,on-hold,stopped,completed",
        "_include": "MedicationRequest:medication",
    }
    assert query["/r4/Condition"] == {
        "patient": "rbs-50m",
        "clinical-status": "active,recurrence,relapse",
    }


def test_prefetched_keys_are_kept_and_not_refetched() -> None:
    fake = standard()
    given = bundle(med("from-the-ehr"))
    prefetch = {"medications": given, "patient": {"resourceType": "Patient", "id": "p"}}
    result = complete(fake, prefetch=prefetch)
    assert result["medications"] is given
    assert result["patient"] == prefetch["patient"]
    assert ids(result["conditions"]) == ["back-itching"]
    assert fake.paths() == ["/r4/Condition"]
    assert "conditions" not in prefetch  # the caller's dict is not changed


def test_operation_outcome_key_is_refetched() -> None:
    fake = standard()
    result = complete(fake, prefetch={"medications": outcome(), "conditions": None})
    assert ids(result["medications"]) == ["amisulpride-600"]
    assert fake.paths() == ["/r4/MedicationRequest"]


def test_null_key_means_no_data_and_is_left_alone() -> None:
    fake = standard()
    result = complete(fake, prefetch={"medications": None})
    assert result["medications"] is None
    assert fake.paths() == ["/r4/Condition"]


def test_nothing_missing_makes_no_request_and_needs_no_server() -> None:
    fake = standard()
    prefetch = {"medications": None, "conditions": bundle(cond("c1"))}
    assert complete(fake, prefetch=prefetch, server=None) == prefetch
    assert fake.requests == []


def test_keys_to_complete() -> None:
    paged = bundle(med("m1"), next_url=f"{BASE}/MedicationRequest?page=2")
    assert keys_to_complete(None, REQUIRED) == ["medications", "conditions"]
    assert keys_to_complete({"medications": None, "conditions": outcome()}, REQUIRED) == [
        "conditions"
    ]
    assert keys_to_complete({"medications": paged, "conditions": []}, REQUIRED) == ["medications"]


def test_a_read_returns_the_resource() -> None:
    result = complete(standard(), templates=PREFETCH, required=("patient",))
    assert result["patient"] == {"resourceType": "Patient", "id": "rbs-50m"}


def test_a_read_answered_with_another_type_is_unavailable() -> None:
    fake = FakeFhir({"Patient/rbs-50m": bundle()})
    assert unavailable(fake, required=("patient",)) == ["patient"]


# ---- headers ---------------------------------------------------------------------------


def test_authorization_and_accept_headers_are_sent() -> None:
    fake = standard()
    complete(fake)
    for request in fake.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/fhir+json"


def test_without_fhir_authorization_no_authorization_header() -> None:
    fake = standard()
    complete(fake, token=None)
    assert fake.requests
    assert all("Authorization" not in r.headers for r in fake.requests)


def test_the_token_is_not_put_on_the_shared_client() -> None:
    fake = standard()

    async def run() -> httpx.Headers:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
            await complete_prefetch(
                client,
                fhir_server=BASE,
                access_token=TOKEN,
                context=CONTEXT,
                templates=PREFETCH,
                required=REQUIRED,
                prefetch=None,
            )
            return client.headers

    assert "Authorization" not in asyncio.run(run())


# ---- paging ----------------------------------------------------------------------------


def paged_fake(pages: int, *, per_page: int = 1) -> FakeFhir:
    """MedicationRequest search in ``pages`` pages, linked with ``?page=N``."""
    routes: dict[str, Any] = {"Condition": bundle()}
    for n in range(1, pages + 1):
        rows = [med(f"m{n}-{i}") for i in range(per_page)]
        next_url = f"{BASE}/MedicationRequest?page={n + 1}" if n < pages else None
        routes["MedicationRequest" if n == 1 else f"MedicationRequest#{n}"] = bundle(
            *rows, next_url=next_url
        )
    return FakeFhir(routes)


def test_pages_are_followed_and_merged() -> None:
    fake = paged_fake(3)
    result = complete(fake)
    merged = result["medications"]
    assert ids(merged) == ["m1-0", "m2-0", "m3-0"]
    assert merged["resourceType"] == "Bundle"
    assert merged["type"] == "searchset"
    assert "link" not in merged  # one merged Bundle is no longer a page
    assert len([r for r in fake.requests if r.url.path.endswith("MedicationRequest")]) == 3
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)


def test_a_prefetched_bundle_with_a_next_link_is_completed() -> None:
    fake = paged_fake(2)
    first = fake.routes.pop("MedicationRequest")
    result = complete(fake, prefetch={"medications": first, "conditions": None})
    assert ids(result["medications"]) == ["m1-0", "m2-0"]
    assert [r.url.params["page"] for r in fake.requests] == ["2"]


def test_a_relative_next_link_is_resolved_against_the_server() -> None:
    fake = paged_fake(2)
    fake.routes["MedicationRequest"]["link"][-1]["url"] = "MedicationRequest?page=2"
    assert ids(complete(fake)["medications"]) == ["m1-0", "m2-0"]


def test_included_resources_repeated_on_pages_are_merged_once() -> None:
    shared = {"resourceType": "Medication", "id": "amisulpride"}
    fake = FakeFhir(
        {
            "Condition": bundle(),
            "MedicationRequest": bundle(
                med("m1"), shared, next_url=f"{BASE}/MedicationRequest?page=2"
            ),
            "MedicationRequest#2": bundle(med("m2"), shared),
        }
    )
    assert ids(complete(fake)["medications"]) == ["m1", "amisulpride", "m2"]


def test_page_bound_is_respected() -> None:
    """A server that pages forever gets ``max_pages`` requests for the key, then a 412."""
    fake = paged_fake(50)
    policy = FetchPolicy(max_pages=4, request_timeout=0.5)
    assert unavailable(fake, policy=policy) == ["medications"]
    assert len([r for r in fake.requests if r.url.path.endswith("MedicationRequest")]) == 4


def test_entry_bound_is_respected() -> None:
    fake = paged_fake(5, per_page=3)
    policy = FetchPolicy(max_entries=7, request_timeout=0.5)
    assert unavailable(fake, policy=policy) == ["medications"]
    assert len([r for r in fake.requests if r.url.path.endswith("MedicationRequest")]) == 3
    assert ids(complete(paged_fake(2, per_page=3), policy=policy)["medications"]) == [
        "m1-0",
        "m1-1",
        "m1-2",
        "m2-0",
        "m2-1",
        "m2-2",
    ]


@pytest.mark.parametrize(
    "next_url",
    [
        "https://elsewhere.example.net/r4/MedicationRequest?page=2",
        "http://fhir.example.org/r4/MedicationRequest?page=2",  # same host, not https
        "https://fhir.example.org:8443/r4/MedicationRequest?page=2",
        "//elsewhere.example.net/r4/MedicationRequest?page=2",
    ],
)
def test_next_link_to_another_origin_is_refused(next_url: str) -> None:
    """Following it would send the token to another host: stop, 412."""
    fake = paged_fake(2)
    fake.routes["MedicationRequest"]["link"][-1]["url"] = next_url
    assert unavailable(fake) == ["medications"]
    assert {r.url.host for r in fake.requests} == {"fhir.example.org"}
    assert {r.url.port for r in fake.requests} == {None}
    assert all("page" not in r.url.params for r in fake.requests)


def test_prefetched_next_link_to_another_origin_is_refused() -> None:
    fake = standard()
    first = bundle(med("m1"), next_url="https://elsewhere.example.net/page2")
    assert unavailable(fake, prefetch={"medications": first, "conditions": None}) == ["medications"]
    assert fake.requests == []


def test_prefetched_next_link_without_fhir_server_is_unavailable() -> None:
    first = bundle(med("m1"), next_url=f"{BASE}/MedicationRequest?page=2")
    missing = unavailable(standard(), prefetch={"medications": first}, server=None)
    assert missing == ["medications", "conditions"]


# ---- failures --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 410, 429, 500, 502, 503])
def test_error_status_makes_every_failing_key_unavailable(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=outcome())

    assert unavailable(handler) == ["medications", "conditions"]


def test_only_the_failing_key_is_named() -> None:
    fake = standard()
    fake.routes["Condition"] = lambda request: httpx.Response(500, text="boom")
    assert unavailable(fake) == ["conditions"]


def test_a_redirect_is_not_followed() -> None:
    fake = standard()
    fake.routes["Condition"] = lambda request: httpx.Response(
        302, headers={"Location": "https://elsewhere.example.net/Condition"}
    )
    assert unavailable(fake) == ["conditions"]
    assert {r.url.host for r in fake.requests} == {"fhir.example.org"}


def test_a_slow_server_times_out() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=bundle())

    policy = FetchPolicy(request_timeout=0.05, overall_timeout=2.0)
    assert unavailable(handler, policy=policy) == ["medications", "conditions"]


def test_httpx_timeouts_are_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    assert unavailable(handler) == ["medications", "conditions"]


def test_overall_timeout_bounds_all_pages_together() -> None:
    """Each page is quick, but the pages of one key together take too long."""

    async def slow_page(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.04)
        page = int(request.url.params.get("page", "1"))
        return httpx.Response(
            200, json=bundle(med(f"m{page}"), next_url=f"{BASE}/MedicationRequest?page={page + 1}")
        )

    policy = FetchPolicy(request_timeout=1.0, overall_timeout=0.2, max_pages=100)
    fake = FakeFhir({"Condition": bundle(), "MedicationRequest": slow_page})
    fake.routes.update({f"MedicationRequest#{n}": slow_page for n in range(2, 101)})
    assert unavailable(fake, policy=policy) == ["medications"]


@pytest.mark.parametrize(
    "error", [httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.ProxyError]
)
def test_connection_errors_are_unavailable(error: type[httpx.TransportError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("connection refused", request=request)

    assert unavailable(handler) == ["medications", "conditions"]


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Service Unavailable</body></html>",
        b'{"resourceType": "Bundle", "entry": [',
        b"",
        b'["a", "list"]',
        b'{"hello": "world"}',
        b'{"resourceType": "OperationOutcome", "issue": []}',
        b'{"resourceType": "Patient", "id": "p"}',
        b'{"resourceType": "Bundle", "entry": {"not": "a list"}}',
    ],
    ids=["html", "truncated", "empty", "list", "no-type", "outcome", "wrong-type", "bad-entry"],
)
def test_non_fhir_bodies_are_unavailable(body: bytes) -> None:
    fake = standard()
    fake.routes["Condition"] = lambda request: httpx.Response(
        200, content=body, headers={"content-type": "application/fhir+json"}
    )
    assert unavailable(fake) == ["conditions"]


def test_a_response_over_the_size_bound_is_unavailable() -> None:
    fake = standard()
    policy = FetchPolicy(max_response_bytes=2_000, request_timeout=0.5)
    fake.routes["Condition"] = bundle(*[cond(f"c{i}") for i in range(50)])
    assert unavailable(fake, policy=policy) == ["conditions"]


def test_no_fhir_server_names_every_missing_key() -> None:
    fake = standard()
    assert unavailable(fake, server=None, prefetch={"conditions": None}) == ["medications"]
    assert unavailable(fake, server="") == ["medications", "conditions"]
    assert fake.requests == []


# ---- which servers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "server",
    [
        "ftp://fhir.example.org/r4",
        "file:///etc/passwd",
        "fhir.example.org/r4",
        "https://user:secret@fhir.example.org/r4",
        "https://fhir.example.org/r4?x=1",
        "https://fhir.example.org/r4#frag",
        "not a url at all",
    ],
)
def test_only_plain_http_urls_are_contacted(server: str) -> None:
    fake = standard()
    assert unavailable(fake, server=server) == ["medications", "conditions"]
    assert fake.requests == []


@pytest.mark.parametrize(
    "server",
    [
        "https://fhir.example.org/r4",
        "https://fhir.example.org/r4/",
        "https://FHIR.example.org:443/r4/tenant-1",
    ],
)
def test_allowlisted_servers_are_used(server: str) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=bundle())

    policy = FetchPolicy(allowed_servers=("https://fhir.example.org/r4", "http://127.0.0.1"))
    complete(handler, server=server, policy=policy)
    assert len(requests) == 2


@pytest.mark.parametrize(
    "server",
    [
        "https://fhir.example.org.evil.example.net/r4",
        "https://fhir.example.org/r4x",
        "https://fhir.example.org/",
        "http://fhir.example.org/r4",
        "https://fhir.example.org:8443/r4",
        "https://evil.example.net/r4",
    ],
)
def test_servers_off_the_allowlist_are_not_contacted(server: str) -> None:
    fake = standard()
    policy = FetchPolicy(allowed_servers=("https://fhir.example.org/r4",))
    assert unavailable(fake, server=server, policy=policy) == ["medications", "conditions"]
    assert fake.requests == []


def test_an_empty_allowlist_turns_the_fallback_off() -> None:
    fake = standard()
    assert unavailable(fake, policy=FetchPolicy(allowed_servers=())) == REQUIRED_LIST
    assert fake.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"allowed_servers": ("fhir.example.org",)},
        {"allowed_servers": ("ftp://fhir.example.org",)},
        {"request_timeout": 0},
        {"max_pages": 0},
        {"max_concurrency": 0},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"FetchPolicy|allowed FHIR server"):
        FetchPolicy(**kwargs)


# ---- templates ---------------------------------------------------------------------------


def test_template_tokens_are_filled_and_url_encoded() -> None:
    context = {"patientId": "a b/c?d&e", "userId": "Practitioner/1", "encounterId": "e#1"}
    template = (
        "Observation?patient={{context.patientId}}&performer={{ context.userId }}"
        "&encounter={{context.encounterId}}"
    )
    assert render_template(template, context) == (
        "Observation?patient=a%20b%2Fc%3Fd%26e&performer=Practitioner%2F1&encounter=e%231"
    )
    assert render_template("Patient/{{context.patientId}}", context) == "Patient/a%20b%2Fc%3Fd%26e"


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("Patient/{{context.patientId}}", {}),
        ("Patient/{{context.patientId}}", {"patientId": 42}),
        ("Patient/{{context.patientId}}", {"patientId": ""}),
        ("Patient/{{context.patientId}}", {"patientId": ".."}),
        ("Encounter/{{context.encounterId}}", {"patientId": "p"}),
        ("Practitioner/{{userPractitionerId}}", {"userId": "Practitioner/1"}),
        ("Patient/{{context.patientId.reference}}", {"patientId": "p"}),
        ("Patient/{{context.patientId}", {"patientId": "p"}),
    ],
)
def test_unresolvable_templates(template: str, context: dict[str, Any]) -> None:
    assert render_template(template, context) is None


def test_a_token_missing_from_the_context_is_unavailable_without_a_request() -> None:
    fake = standard()
    assert unavailable(fake, context={"userId": "Practitioner/1"}) == ["medications", "conditions"]
    templates = {**PREFETCH, "conditions": "Condition?encounter={{context.encounterId}}"}
    context = {"patientId": "rbs-50m", "userId": "Practitioner/1"}
    assert unavailable(fake, context=context, templates=templates) == ["conditions"]
    assert fake.requests == []


def test_a_required_key_without_a_template_is_unavailable() -> None:
    fake = standard()
    templates = {"medications": PREFETCH["medications"]}
    assert unavailable(fake, templates=templates) == ["conditions"]
    assert fake.requests == []


def test_an_encoded_id_cannot_leave_its_path_segment() -> None:
    fake = standard()
    context = {**CONTEXT, "patientId": "rbs-50m/../../admin"}
    unavailable(fake, context=context, required=("patient",))
    # an encoded "/" in a path segment is ambiguous (servers differ on decoding it), so
    # the URL is refused before any request; FHIR ids never contain "/"
    assert fake.requests == []


# ---- concurrency, cancellation ------------------------------------------------------------


def test_concurrency_is_bounded() -> None:
    """Six keys, at most two requests in flight at once (and two do overlap)."""
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json=bundle())

    keys = tuple(f"k{i}" for i in range(6))
    templates = {k: f"Observation?patient={{{{context.patientId}}}}&code={k}" for k in keys}
    policy = FetchPolicy(max_concurrency=2, request_timeout=1.0)
    result = complete(handler, templates=templates, required=keys, policy=policy)
    assert set(result) == set(keys)
    assert peak == 2


def test_cancelling_the_call_cancels_its_requests() -> None:
    started = 0
    finished = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal started, finished
        started += 1
        await asyncio.sleep(5)
        finished += 1
        return httpx.Response(200, json=bundle())

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            call = asyncio.create_task(
                complete_prefetch(
                    client,
                    fhir_server=BASE,
                    access_token=TOKEN,
                    context=CONTEXT,
                    templates=PREFETCH,
                    required=REQUIRED,
                    prefetch=None,
                    policy=FetchPolicy(request_timeout=10, overall_timeout=10),
                )
            )
            await asyncio.sleep(0.05)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(run())
    assert (started, finished) == (2, 0)


# ---- the token -----------------------------------------------------------------------------


def _connection_refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


async def _stall(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(5)
    return httpx.Response(200, json=bundle())


@pytest.mark.parametrize(
    "handler",
    [
        lambda request: httpx.Response(401, json=outcome()),
        lambda request: httpx.Response(200, content=b"not json"),
        _connection_refused,
        _stall,
        paged_fake(2),
    ],
    ids=["401", "bad-json", "refused", "timeout", "other-origin"],
)
def test_the_token_is_in_no_log_record_and_no_exception(
    handler: Handler, caplog: pytest.LogCaptureFixture
) -> None:
    if isinstance(handler, FakeFhir):
        handler.routes["MedicationRequest"]["link"][-1]["url"] = "https://elsewhere.example.net/p"
    for name in ("", "cds", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    policy = FetchPolicy(request_timeout=0.05, overall_timeout=1.0)
    with pytest.raises(PrefetchUnavailableError) as info:
        complete(handler, policy=policy)
    error = info.value
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    assert all(TOKEN not in text for text in texts)
    assert error.__cause__ is None
    assert error.__context__ is None  # no chained httpx error holding the request headers
    assert caplog.records  # the failure was logged...
    assert TOKEN not in caplog.text  # ...without the token
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(record.args)


def test_the_token_is_not_logged_on_success(caplog: pytest.LogCaptureFixture) -> None:
    for name in ("", "cds", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    complete(paged_fake(2))
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("cds")]
    assert ours
    assert TOKEN not in caplog.text
    assert all("rbs-50m" not in m for m in ours)  # nor the URL: it names the patient
