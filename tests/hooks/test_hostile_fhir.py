"""The FHIR fallback against a hostile or broken server, through HTTP.

The server is a fake remote on a loopback port (``tests/fhir/loopback_server.py``): a
real FHIR server will not send a page of 50,000 entries or a next link crafted to leave
its base, and these tests must see every path the service requested.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.settings import Settings
from tests.conftest import load_example
from tests.fhir.loopback_server import LoopbackFhir, loopback_fhir

SERVICE = "/cds-services/restless-order-select"
ALLOWED = "/allowed/fhir"


def _bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


@pytest.fixture
def example() -> dict[str, Any]:
    return load_example("restless-back-amisulpride.json")


@pytest.fixture
def fhir(example: dict[str, Any]) -> Iterator[LoopbackFhir]:
    prefetch = example["prefetch"]
    routes = {
        f"{ALLOWED}/Patient/rbs-50m": prefetch["patient"],
        f"{ALLOWED}/MedicationRequest": prefetch["medications"],
        f"{ALLOWED}/Condition": prefetch["conditions"],
        "/other/fhir/Patient/rbs-50m": prefetch["patient"],
        "/other/fhir/MedicationRequest": prefetch["medications"],
        "/other/fhir/Condition": prefetch["conditions"],
    }
    with loopback_fhir(routes) as server:
        yield server


def _call(fhir: LoopbackFhir, rules_dir: Path, body: dict[str, Any], **settings: Any) -> Any:
    app = create_app(
        Settings(rules_dir=rules_dir, fhir_allowed_servers=[fhir.base + ALLOWED], **settings)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        return client.post(SERVICE, json=body)


def _without_prefetch(example: dict[str, Any], server: str) -> dict[str, Any]:
    body = copy.deepcopy(example)
    del body["prefetch"]
    body["fhirServer"] = server
    body["fhirAuthorization"] = {
        "access_token": "secret-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "restless-cds",
    }
    return body


def test_the_allowed_server_is_used(
    fhir: LoopbackFhir, rules_dir: Path, example: dict[str, Any]
) -> None:
    response = _call(fhir, rules_dir, _without_prefetch(example, fhir.base + ALLOWED))
    assert response.status_code == 200, response.text
    assert len(response.json()["cards"]) == 1
    # medications, conditions and the optional labs; patient is not needed and not fetched
    assert len(fhir.paths) == 3
    assert all(p.startswith(ALLOWED + "/") for p in fhir.paths)


@pytest.mark.parametrize(
    "suffix",
    [
        "/%2e%2e/%2e%2e/other/fhir",
        "/%2E%2E/%2e%2E/other/fhir",
        "/./%2e%2e/%2e%2e/other/fhir",
        "/..%2f..%2fother/fhir",
        "%2f..%2f..%2fother%2ffhir",
        "/%5c..%5c..%5cother/fhir",
        "-other",
    ],
)
def test_a_dot_segment_bypass_of_the_allowlist_is_refused(
    fhir: LoopbackFhir, rules_dir: Path, example: dict[str, Any], suffix: str
) -> None:
    """Regression: ``<allowed>/%2e%2e/%2e%2e/other/fhir`` passed the allowlist (a string
    prefix check) and the bearer token went to /other/fhir."""
    response = _call(fhir, rules_dir, _without_prefetch(example, fhir.base + ALLOWED + suffix))
    assert response.status_code == 412, response.text
    assert fhir.paths == []


def test_a_next_link_leaving_the_allowed_base_is_not_followed(
    fhir: LoopbackFhir, rules_dir: Path, example: dict[str, Any]
) -> None:
    """Regression: next links were checked for the origin only; the allowlist's base path
    applies to them as to ``fhirServer``, after the same normalisation."""
    conditions = example["prefetch"]["conditions"]["entry"]
    escape = f"{fhir.base}{ALLOWED}/%2e%2e/%2e%2e/other/fhir/Condition?page=2"
    fhir.routes[f"{ALLOWED}/Condition"] = _bundle([e["resource"] for e in conditions], escape)
    response = _call(fhir, rules_dir, _without_prefetch(example, fhir.base + ALLOWED))
    assert response.status_code == 412, response.text
    assert [i["expression"] for i in response.json()["issue"]] == [["prefetch.conditions"]]
    assert not any(p.startswith("/other") for p in fhir.paths)


def test_one_huge_page_without_a_next_link_is_refused(
    fhir: LoopbackFhir, rules_dir: Path, example: dict[str, Any]
) -> None:
    """Regression: a single page of tens of thousands of entries and no next link was
    read and parsed whole; the entry bound applies to every page (412, as for paging)."""
    condition = example["prefetch"]["conditions"]["entry"][0]["resource"]
    many = [{**condition, "id": f"c{i}"} for i in range(50_000)]
    fhir.routes[f"{ALLOWED}/Condition"] = _bundle(many)
    response = _call(fhir, rules_dir, _without_prefetch(example, fhir.base + ALLOWED))
    assert response.status_code == 412, response.text
    assert [i["expression"] for i in response.json()["issue"]] == [["prefetch.conditions"]]


def test_a_page_just_over_the_bound_is_refused_and_one_at_it_is_used(
    fhir: LoopbackFhir, rules_dir: Path, example: dict[str, Any]
) -> None:
    condition = example["prefetch"]["conditions"]["entry"][0]["resource"]
    body = _without_prefetch(example, fhir.base + ALLOWED)
    fhir.routes[f"{ALLOWED}/Condition"] = _bundle([{**condition, "id": f"c{i}"} for i in range(6)])
    assert _call(fhir, rules_dir, body, fhir_max_entries=5).status_code == 412
    fhir.routes[f"{ALLOWED}/Condition"] = _bundle([{**condition, "id": f"c{i}"} for i in range(5)])
    assert _call(fhir, rules_dir, body, fhir_max_entries=5).status_code == 200


def _labs_left_out(example: dict[str, Any], server: str) -> dict[str, Any]:
    """The EHR sent the required prefetch but not the optional labs."""
    body = copy.deepcopy(example)
    body["fhirServer"] = server
    body["prefetch"].pop("observations", None)
    return body


def _lab_requests(fhir: LoopbackFhir) -> int:
    return sum(1 for path in fhir.paths if "/Observation" in path)


def test_labs_the_prefetch_left_out_are_asked_for_once_per_worker_not_per_call(
    fhir: LoopbackFhir, example: dict[str, Any], rules_dir: Path
) -> None:
    fhir.routes[f"{ALLOWED}/Observation"] = _bundle([])
    body = _labs_left_out(example, fhir.base + ALLOWED)
    app = create_app(Settings(rules_dir=rules_dir, fhir_allowed_servers=[fhir.base + ALLOWED]))
    with TestClient(app) as client:
        answers = [client.post(SERVICE, json=body) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    # every answer read the (empty) lab list: the recalled one after the first
    assert all("No ferritin in the last 12 months" in a.text for a in answers)
    assert _lab_requests(fhir) == 1


def test_a_server_that_cannot_give_the_labs_is_not_asked_on_every_call(
    fhir: LoopbackFhir, example: dict[str, Any], rules_dir: Path
) -> None:
    body = _labs_left_out(example, fhir.base + ALLOWED)  # no Observation route: 404
    app = create_app(Settings(rules_dir=rules_dir, fhir_allowed_servers=[fhir.base + ALLOWED]))
    with TestClient(app) as client:
        answers = [client.post(SERVICE, json=body) for _ in range(5)]
    assert [len(a.json()["cards"]) for a in answers] == [1] * 5
    assert _lab_requests(fhir) == 1


def test_with_no_memory_the_labs_are_asked_for_on_every_call(
    fhir: LoopbackFhir, example: dict[str, Any], rules_dir: Path
) -> None:
    body = _labs_left_out(example, fhir.base + ALLOWED)
    settings = Settings(
        rules_dir=rules_dir,
        fhir_allowed_servers=[fhir.base + ALLOWED],
        fhir_optional_remember_seconds=0,
    )
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            client.post(SERVICE, json=body)
    assert _lab_requests(fhir) == 3
