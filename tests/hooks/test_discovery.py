"""Discovery: ``GET {baseUrl}/cds-services`` (CDS Hooks 2.0 #discovery)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hooks.support import (
    SERVICE_FOR_HOOK,
    TestClient,
    assert_cards_response,
    assert_no_null_or_empty,
    prefetch_tokens,
)

CONTEXT_TOKENS = {"context.patientId", "context.userId", "context.encounterId"}


def _services(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/cds-services")
    assert response.status_code == 200
    services: list[dict[str, Any]] = response.json()["services"]
    return services


def test_discovery_is_a_json_object_listing_the_three_services(client: TestClient) -> None:
    """Req 1, 3, 4, 5, 6, 13: 200, JSON, an object with a ``services`` array."""
    response = client.get("/cds-services")

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert isinstance(body, dict)
    assert list(body) == ["services"]
    assert isinstance(body["services"], list)
    assert sorted(s["hook"] for s in body["services"]) == [
        "order-select",
        "order-sign",
        "patient-view",
    ]
    assert_no_null_or_empty(body)


def test_each_service_has_the_required_attributes(client: TestClient) -> None:
    """Req 7, 8, 9, 10, 11, 12: hook, title, description, id strings; prefetch an object
    of string templates; usageRequirements a string when present; ids unique."""
    services = _services(client)

    for service in services:
        for key in ("hook", "title", "description", "id"):
            assert isinstance(service.get(key), str), (service.get("id"), key)
            assert service[key].strip(), (service.get("id"), key)
        assert isinstance(service["prefetch"], dict)
        assert all(isinstance(v, str) for v in service["prefetch"].values())
        if "usageRequirements" in service:
            assert isinstance(service["usageRequirements"], str)
        if "extension" in service:
            assert isinstance(service["extension"], dict)
    assert len({s["id"] for s in services}) == len(services)
    assert {s["hook"]: s["id"] for s in services} == SERVICE_FOR_HOOK


def test_prefetch_templates_use_only_primitive_context_tokens(client: TestClient) -> None:
    """Req 29, 35, 36, 55, 56, 57, 59: every ``{{token}}`` is ``context.<field>`` of a
    root-level primitive (patientId, userId, encounterId), braces balanced, templates
    relative FHIR queries (no base URL)."""
    for service in _services(client):
        assert service["prefetch"], service["id"]
        for key, template in service["prefetch"].items():
            tokens = prefetch_tokens(template)
            assert tokens, (service["id"], key)
            assert set(tokens) <= CONTEXT_TOKENS, (service["id"], key, tokens)
            stripped = template
            for token in tokens:
                stripped = stripped.replace("{{" + token + "}}", "")
            assert "{" not in stripped, (service["id"], key, template)
            assert "}" not in stripped, (service["id"], key, template)
            assert not template.startswith(("/", "http:", "https:")), template


def test_required_prefetch_keys_are_advertised(client: TestClient) -> None:
    """Req 29, 36: the data the service demands (412 without it) has a prefetch key."""
    for service in _services(client):
        assert {"medications", "conditions"} <= set(service["prefetch"]), service["id"]
        assert service["prefetch"]["medications"].startswith("MedicationRequest?")
        assert service["prefetch"]["conditions"].startswith("Condition?")


@pytest.mark.parametrize("hook", sorted(SERVICE_FOR_HOOK))
def test_every_advertised_id_is_a_callable_endpoint(client: TestClient, hook: str) -> None:
    """Req 10, 16, 74, 77: ``{baseUrl}/cds-services/{id}`` answers the hook it lists,
    with no guidance for a patient without data: 200 ``{"cards": []}``."""
    service = next(s for s in _services(client) if s["hook"] == hook)
    context: dict[str, Any] = {"userId": "Practitioner/1", "patientId": "p1"}
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection"}
    if hook == "order-select":
        context["selections"] = ["MedicationRequest/none"]
    body = {
        "hook": hook,
        "hookInstance": "2f0a1f7c-67c3-4f0a-8d3e-7a4c1a0e9b11",
        "context": context,
        "prefetch": {"patient": None, "medications": None, "conditions": None},
    }

    response = client.post(f"/cds-services/{service['id']}", json=body)

    assert assert_cards_response(response) == []
    assert response.json() == {"cards": []}
