"""Optional prefetch (the labs): fetched by the fallback when it can be, left out when it
cannot, never a 412. The FHIR server is faked with ``httpx.MockTransport`` as in
test_client.py; tests/hooks/test_labs_over_http.py runs a real FHIR server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from cds.errors import PrefetchUnavailableError
from cds.fhir.client import FetchPolicy, complete_prefetch
from cds.fhir.recall import OptionalRecall
from cds.hooks.services import LAB_CODES, OPTIONAL, PREFETCH, REQUIRED
from tests.fhir.test_client import BASE, CONTEXT, FAST, TOKEN, FakeFhir, bundle, ids, standard


def lab(rid: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final"}


def complete(
    fake: FakeFhir,
    prefetch: Mapping[str, Any] | None,
    server: str | None = BASE,
    *,
    recall: OptionalRecall | None = None,
    token: str = TOKEN,
    policy: FetchPolicy = FAST,
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
            return await complete_prefetch(
                client,
                fhir_server=server,
                access_token=token,
                context=CONTEXT,
                templates=PREFETCH,
                required=REQUIRED,
                prefetch=prefetch,
                policy=policy,
                optional=OPTIONAL,
                recall=recall,
            )

    return asyncio.run(run())


REQUIRED_SENT = {"medications": bundle(), "conditions": bundle()}
"""An EHR's prefetch with the required keys and without the labs."""


def lab_requests(fake: FakeFhir) -> int:
    return sum(1 for r in fake.requests if r.url.path == "/r4/Observation")


def with_labs() -> FakeFhir:
    fake = standard()
    fake.routes["Observation"] = bundle(lab("ferritin-1"))
    return fake


def test_missing_labs_are_fetched_by_code_and_status() -> None:
    fake = with_labs()
    result = complete(fake, prefetch=None)
    assert ids(result["observations"]) == ["ferritin-1"]
    query = {r.url.path: dict(r.url.params) for r in fake.requests}["/r4/Observation"]
    assert query["patient"] == "rbs-50m"
    assert query["status"] == "final,amended,corrected"
    assert query["code"] == ",".join(f"http://loinc.org|{code}" for code in LAB_CODES)


def test_labs_sent_by_the_ehr_are_not_refetched() -> None:
    fake = with_labs()
    given = bundle(lab("from-ehr"))
    result = complete(fake, prefetch={"observations": given})
    assert result["observations"] is given
    assert "/r4/Observation" not in fake.paths()


def test_a_failed_lab_fetch_leaves_the_labs_out_and_the_hook_goes_on() -> None:
    fake = standard()  # no Observation route: 404
    result = complete(fake, prefetch=None)
    assert "observations" not in result
    assert ids(result["conditions"]) == ["back-itching"]


def test_without_a_fhir_server_labs_are_left_out_not_a_412() -> None:
    prefetch = {"medications": bundle(), "conditions": bundle()}
    assert complete(FakeFhir(), prefetch=prefetch, server=None) == prefetch


def test_a_partial_lab_list_that_cannot_be_completed_is_left_out() -> None:
    partial = bundle(lab("page-1"), next_url=f"{BASE}/Observation?page=2")
    prefetch = {"medications": bundle(), "conditions": bundle(), "observations": partial}
    result = complete(FakeFhir(), prefetch=prefetch, server=None)
    assert "observations" not in result  # a partial list would read as "no ferritin"


def test_an_operation_outcome_for_labs_is_refetched() -> None:
    fake = with_labs()
    error = {"resourceType": "OperationOutcome", "issue": []}
    result = complete(
        fake, prefetch={"medications": bundle(), "conditions": bundle(), "observations": error}
    )
    assert ids(result["observations"]) == ["ferritin-1"]


def test_a_412_names_the_required_keys_only() -> None:
    fake = FakeFhir()  # every fetch fails
    with pytest.raises(PrefetchUnavailableError) as info:
        complete(fake, prefetch=None)
    assert sorted(info.value.missing) == ["conditions", "medications"]


# ---- the hot path: order-select fires again and again for one patient ------------------


def test_labs_fetched_once_are_recalled_for_the_next_call_of_the_same_session() -> None:
    fake = with_labs()
    recall = OptionalRecall(60)
    first = complete(fake, prefetch=REQUIRED_SENT, recall=recall)
    second = complete(fake, prefetch=REQUIRED_SENT, recall=recall)
    assert ids(first["observations"]) == ids(second["observations"]) == ["ferritin-1"]
    assert lab_requests(fake) == 1


def test_another_access_token_fetches_the_labs_itself() -> None:
    fake = with_labs()
    recall = OptionalRecall(60)
    complete(fake, prefetch=REQUIRED_SENT, recall=recall)
    complete(fake, prefetch=REQUIRED_SENT, recall=recall, token="another-session")
    assert lab_requests(fake) == 2


def test_a_server_whose_lab_fetch_failed_is_not_asked_again_for_a_while() -> None:
    fake = standard()  # no Observation route: 404
    recall = OptionalRecall(60)
    for _ in range(5):
        result = complete(fake, prefetch=REQUIRED_SENT, recall=recall)
        assert "observations" not in result
        assert ids(result["conditions"]) == []  # the EHR's own prefetch, untouched
    assert lab_requests(fake) == 1


def test_required_keys_are_fetched_on_every_call_even_with_a_memory() -> None:
    fake = with_labs()
    recall = OptionalRecall(60)
    complete(fake, prefetch=None, recall=recall)
    complete(fake, prefetch=None, recall=recall)
    assert [r.url.path for r in fake.requests].count("/r4/MedicationRequest") == 2
    assert lab_requests(fake) == 1


async def _slow_labs(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(5)
    return httpx.Response(200, json=bundle(lab("too-late")))


def test_slow_labs_are_cut_at_their_budget_and_the_call_goes_on() -> None:
    fake = standard()
    fake.routes["Observation"] = _slow_labs
    policy = FetchPolicy(request_timeout=3.0, overall_timeout=4.0, optional_timeout=0.1)
    started = time.monotonic()
    result = complete(fake, prefetch=None, policy=policy)
    assert time.monotonic() - started < 1.0  # not the 3 s request timeout
    assert "observations" not in result
    assert ids(result["medications"]) == ["amisulpride-600"]
