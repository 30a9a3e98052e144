"""Optional prefetch (the labs): fetched by the fallback when it can be, left out when it
cannot, never a 412. The FHIR server is faked with ``httpx.MockTransport`` as in
test_client.py; tests/hooks/test_labs_over_http.py runs a real FHIR server."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from cds.errors import PrefetchUnavailableError
from cds.fhir.client import complete_prefetch
from cds.hooks.services import LAB_CODES, OPTIONAL, PREFETCH, REQUIRED
from tests.fhir.test_client import BASE, CONTEXT, FAST, TOKEN, FakeFhir, bundle, ids, standard


def lab(rid: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final"}


def complete(
    fake: FakeFhir, prefetch: Mapping[str, Any] | None, server: str | None = BASE
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
            return await complete_prefetch(
                client,
                fhir_server=server,
                access_token=TOKEN,
                context=CONTEXT,
                templates=PREFETCH,
                required=REQUIRED,
                prefetch=prefetch,
                policy=FAST,
                optional=OPTIONAL,
            )

    return asyncio.run(run())


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
