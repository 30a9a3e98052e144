"""Every example through the service's HTTP interface, as an EHR calls it: once with its
prefetch, once without, the service fetching the patient's record from a real FHIR
server (sekmet-fhir on loopback, every example bundle loaded into it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from tests.fhir.fhir_server import FhirTestServer, sekmet_fhir_server  # noqa: F401
from tests.hooks.support import TestClient, service_url
from tests.rules.test_examples_on_fhir_server import loaded  # noqa: F401 (fixture)

EXPECTED = sorted(EXAMPLES.glob("*.expected.json"))


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _name(path: Path) -> str:
    return path.name.removesuffix(".expected.json")


def _rules(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(c["extension"]["restless-cds-rule"], c["indicator"]) for c in response.json()["cards"]]


@pytest.mark.parametrize("expected_path", EXPECTED, ids=_name)
def test_example_with_its_prefetch(client: TestClient, expected_path: Path) -> None:
    expected = _json(expected_path)
    body = _json(EXAMPLES / f"{_name(expected_path)}.json")
    got = _rules(client.post(service_url(body), json=body))
    assert got == [(c["rule"], c["indicator"]) for c in expected["cards"]]


@pytest.mark.parametrize("expected_path", EXPECTED, ids=_name)
def test_example_through_the_fhir_fallback(
    client: TestClient,
    loaded: FhirTestServer,  # noqa: F811
    expected_path: Path,
) -> None:
    expected = _json(expected_path)
    body = _json(EXAMPLES / f"{_name(expected_path)}.json")
    body.pop("prefetch", None)
    body["fhirServer"] = loaded.base_url
    body["fhirAuthorization"] = {
        "access_token": loaded.token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "restless-cds",
    }
    got = _rules(client.post(service_url(body), json=body))
    assert got == [(c["rule"], c["indicator"]) for c in expected["cards"]]
