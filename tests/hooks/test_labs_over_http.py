"""Labs over HTTP: each lab example with its prefetch and through the FHIR fallback (a real
sekmet-fhir server on loopback holding the example bundles, Observations included), and
without any lab source at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from tests.fhir.fhir_server import FhirTestServer, sekmet_fhir_server  # noqa: F401
from tests.hooks.support import (
    TestClient,
    expected_request,
    read_json,
    service_url,
    use_fhir_server,
)
from tests.rules.test_examples_on_fhir_server import loaded  # noqa: F401 (fixture)

LAB_EXAMPLES = sorted(EXAMPLES.glob("labs-*.expected.json"))


def _detail(client: TestClient, body: dict[str, Any]) -> str:
    response = client.post(service_url(body), json=body)
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    detail: str = card["detail"]
    return detail


def _words(expected_path: Path) -> list[str]:
    words: list[str] = read_json(expected_path)["cards"][0]["detail_includes"]
    return words


def test_there_are_lab_examples() -> None:
    assert len(LAB_EXAMPLES) >= 3


@pytest.mark.parametrize("expected_path", LAB_EXAMPLES, ids=lambda p: p.name)
def test_lab_example_with_its_prefetch(client: TestClient, expected_path: Path) -> None:
    detail = _detail(client, expected_request(expected_path))
    for words in _words(expected_path):
        assert words in detail


@pytest.mark.parametrize("expected_path", LAB_EXAMPLES, ids=lambda p: p.name)
def test_lab_example_through_the_fhir_fallback(
    client: TestClient,
    loaded: FhirTestServer,  # noqa: F811
    expected_path: Path,
) -> None:
    body = expected_request(expected_path)
    body.pop("prefetch")
    use_fhir_server(body, loaded.base_url, loaded.token)
    detail = _detail(client, body)
    for words in _words(expected_path):
        assert words in detail


def test_labs_fetched_alone_when_the_ehr_sent_the_rest(
    client: TestClient,
    loaded: FhirTestServer,  # noqa: F811
) -> None:
    body = expected_request(EXAMPLES / "labs-low-ferritin-amisulpride.expected.json")
    del body["prefetch"]["observations"]
    use_fhir_server(body, loaded.base_url, loaded.token)
    assert "Ferritin 32 µg/L" in _detail(client, body)


def test_without_labs_or_a_server_the_card_claims_nothing_about_labs(client: TestClient) -> None:
    body = expected_request(EXAMPLES / "labs-low-ferritin-amisulpride.expected.json")
    del body["prefetch"]["observations"]
    body.pop("fhirServer", None)
    detail = _detail(client, body)
    assert "Ferritin" not in detail
    assert "No ferritin" not in detail  # not looked for: nothing said missing
    assert "check ferritin" in detail  # the card's general advice stays


def test_a_failing_lab_search_does_not_fail_the_hook(client: TestClient) -> None:
    body = expected_request(EXAMPLES / "labs-low-ferritin-amisulpride.expected.json")
    del body["prefetch"]["observations"]
    body["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens: the search fails
    detail = _detail(client, body)
    assert "No ferritin" not in detail


def test_another_patients_ferritin_is_not_read(client: TestClient) -> None:
    body = expected_request(EXAMPLES / "labs-low-ferritin-amisulpride.expected.json")
    for entry in body["prefetch"]["observations"]["entry"]:
        entry["resource"]["subject"] = {"reference": "Patient/someone-else"}
    detail = _detail(client, body)
    assert "Ferritin 32" not in detail
    assert "none on record" in detail


def test_discovery_offers_the_observations_prefetch(client: TestClient) -> None:
    services = client.get("/cds-services").json()["services"]
    for service in services:
        assert service["prefetch"]["observations"].startswith(
            "Observation?patient={{context.patientId}}"
        )


@pytest.mark.parametrize("value", [5e-324, 1e-9, 0.00004])
def test_a_lab_value_too_small_for_the_engine_is_read_not_a_422(
    client: TestClient, value: float
) -> None:
    body = expected_request(EXAMPLES / "labs-low-ferritin-amisulpride.expected.json")
    ferritin = body["prefetch"]["observations"]["entry"][0]["resource"]
    ferritin["valueQuantity"]["value"] = value
    detail = _detail(client, body)  # one odd Observation never refuses the whole call
    assert "Ferritin 0 µg/L" in detail


@pytest.mark.parametrize(
    "observations",
    [
        "not a bundle",
        [],
        {"resourceType": "Bundle", "entry": {"resource": {}}},
        {"resourceType": "Bundle", "entry": [1, {"resource": None}]},
    ],
    ids=["string", "list", "entry-not-a-list", "entries-without-resources"],
)
def test_an_unreadable_labs_prefetch_claims_no_absence(
    client: TestClient, observations: Any
) -> None:
    """Labs sent in a shape that cannot be read are not "none on record": a ferritin may
    have been in what could not be read, so the card claims nothing about labs."""
    body = expected_request(EXAMPLES / "labs-low-ferritin-amisulpride.expected.json")
    body["prefetch"]["observations"] = observations
    detail = _detail(client, body)
    assert "none on record" not in detail
    assert "Ferritin 32" not in detail
