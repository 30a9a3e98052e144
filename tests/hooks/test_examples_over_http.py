"""Every example through the service's HTTP interface, as an EHR calls it: once with its
prefetch, once without, the service fetching the patient's record from a real FHIR
server (sekmet-fhir on loopback, every example bundle loaded into it)."""

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

EXPECTED = sorted(EXAMPLES.glob("*.expected.json"))


def _name(path: Path) -> str:
    return path.name.removesuffix(".expected.json")


def _rules(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(c["extension"]["restless-cds-rule"], c["indicator"]) for c in response.json()["cards"]]


def _expected_rules(expected_path: Path) -> list[tuple[str, str]]:
    return [(c["rule"], c["indicator"]) for c in read_json(expected_path)["cards"]]


@pytest.mark.parametrize("expected_path", EXPECTED, ids=_name)
def test_example_with_its_prefetch(client: TestClient, expected_path: Path) -> None:
    body = expected_request(expected_path)
    got = _rules(client.post(service_url(body), json=body))
    assert got == _expected_rules(expected_path)


@pytest.mark.parametrize("expected_path", EXPECTED, ids=_name)
def test_example_through_the_fhir_fallback(
    client: TestClient,
    loaded: FhirTestServer,  # noqa: F811
    expected_path: Path,
) -> None:
    body = expected_request(expected_path)
    body.pop("prefetch", None)
    use_fhir_server(body, loaded.base_url, loaded.token)
    got = _rules(client.post(service_url(body), json=body))
    assert got == _expected_rules(expected_path)
