"""Nesting within what the body parser accepts (about 250 levels) but past what FHIR
validation can recurse through: the resource is skipped as an input issue naming where,
the rest of the record is still read, never a 500 (RecursionError)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import load_example
from tests.hooks.support import TestClient, example, service_url


def _nested_extension(levels: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "v"}
    for _ in range(levels):
        extension = {"url": "http://example.org/node", "extension": [extension]}
    return extension


def _in_draft_dosage(body: dict[str, Any], extension: dict[str, Any]) -> None:
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["extension"] = [extension]


def _in_current_order_dosage(body: dict[str, Any], extension: dict[str, Any]) -> None:
    order = body["prefetch"]["medications"]["entry"][0]["resource"]
    order["dosageInstruction"][0]["extension"] = [extension]


def _in_condition_code(body: dict[str, Any], extension: dict[str, Any]) -> None:
    condition = body["prefetch"]["conditions"]["entry"][0]["resource"]
    condition["code"]["extension"] = [extension]


PLACES: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "draft-dosage": _in_draft_dosage,
    "current-order-dosage": _in_current_order_dosage,
    "condition-code": _in_condition_code,
}


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("levels", [100, 118, 121])
def test_a_resource_nested_too_deep_for_validation_is_skipped_not_a_500(
    client: TestClient, place: str, levels: int
) -> None:
    body = example()
    body["prefetch"]["observations"] = None  # labs looked for, none: no FHIR server call
    PLACES[place](body, _nested_extension(levels))
    response = client.post(service_url(body), json=body)
    assert response.status_code == 200, response.text


def test_a_deep_observation_is_skipped_not_a_500(client: TestClient) -> None:
    body = load_example("labs-low-ferritin-amisulpride.json")
    ferritin = body["prefetch"]["observations"]["entry"][0]["resource"]
    ferritin["code"]["extension"] = [_nested_extension(121)]
    response = client.post(service_url(body), json=body)
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    assert "Ferritin 32" not in card["detail"]  # the unreadable ferritin is not used
