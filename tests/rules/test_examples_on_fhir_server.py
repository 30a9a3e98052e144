"""All example bundles in ONE FHIR server (sekmet-fhir), each example's cards by patient id.

Loading every bundle into the same server is what an integrator does for the Sandbox;
it only works when resource ids are unique across examples (a shared id would overwrite
another example's resource and mix the patients). Each request then loses its prefetch,
the service's fallback fetches the patient's data from the server, and the cards must be
those the example's .expected.json names.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds.fhir.client import FetchPolicy, complete_prefetch
from cds.hooks import SERVICES, evaluate, parse_request
from cds.hooks.services import PREFETCH
from cds.rulebase import RuleBase
from tests.conftest import EXAMPLES
from tests.fhir.fhir_server import FhirTestServer, sekmet_fhir_server  # noqa: F401

BUNDLES = sorted((EXAMPLES / "bundles").glob("*.bundle.json"))
POLICY = FetchPolicy(request_timeout=5.0, overall_timeout=10.0)


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_resource_ids_are_unique_across_examples_and_patients_are_named() -> None:
    ids: Counter[str] = Counter()
    for path in BUNDLES:
        for entry in _json(path)["entry"]:
            resource = entry["resource"]
            ids[f"{resource['resourceType']}/{resource['id']}"] += 1
            if resource["resourceType"] == "Patient":
                assert resource.get("name"), f"{path.name}: the patient has no name"
    assert [key for key, n in ids.items() if n > 1] == []


@pytest.fixture(scope="module")
def loaded(fhir_server: FhirTestServer) -> FhirTestServer:
    for path in BUNDLES:
        response = httpx.post(
            fhir_server.base_url,
            json=_json(path),
            headers={"Authorization": f"Bearer {fhir_server.token}"},
            timeout=10.0,
        )
        assert response.status_code == 200, f"{path.name}: HTTP {response.status_code}"
    return fhir_server


@pytest.mark.parametrize("name", [p.name.removesuffix(".bundle.json") for p in BUNDLES])
def test_each_example_gets_its_cards_from_the_shared_server(
    loaded: FhirTestServer, rulebase: RuleBase, name: str
) -> None:
    expected = _json(EXAMPLES / f"{name}.expected.json")
    body = _json(EXAMPLES / f"{name}.json")
    body.pop("prefetch", None)
    request = parse_request(body)
    service = SERVICES[expected["service"]]

    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            return await complete_prefetch(
                client,
                fhir_server=loaded.base_url,
                access_token=loaded.token,
                context=request.context,
                templates=PREFETCH,
                required=service.required,
                prefetch=None,
                policy=POLICY,
            )

    fetched = asyncio.run(fetch())
    result = evaluate(
        request.model_copy(update={"prefetch": fetched}),
        service,
        rulebase,
        source_label="restless-cds",
        override_system="urn:restless-cds:override-reason",
    )
    got = [(c["extension"]["restless-cds-rule"], c["indicator"]) for c in result.cards]
    assert got == [(c["rule"], c["indicator"]) for c in expected["cards"]]
