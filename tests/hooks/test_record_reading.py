"""How orders are read, through the HTTP interface: statuses the prefetch filter should
have removed, chart drafts, unit spellings, and doses written only as sig text."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hooks.support import (
    TestClient,
    as_patient_view,
    current_order,
    draft_order,
    example,
    service_url,
)


def _rules(client: TestClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(service_url(body), json=body)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "draft"])
def test_chart_orders_that_are_not_taken_are_no_exposure(client: TestClient, status: str) -> None:
    """Sent despite the prefetch's status filter: never exposure, never "being ordered"."""
    body = as_patient_view(example())
    current_order(body)["status"] = status
    assert _rules(client, body) == []


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error"])
def test_a_cancelled_draft_order_is_not_the_order_being_placed(
    client: TestClient, status: str
) -> None:
    body = example()
    draft_order(body)["status"] = status
    cards = _rules(client, body)
    assert [c["extension"]["restless-cds-rule"] for c in cards] == ["dose-review.current-drug"]
    assert "suggestions" not in cards[0]


@pytest.mark.parametrize("unit", ["milligrams", "MG", "milligram"])
def test_suggestions_survive_any_spelling_of_the_unit(client: TestClient, unit: str) -> None:
    """Regression: a draft dosed in "milligrams" lost its dose suggestions."""
    body = example()
    for dosage in draft_order(body)["dosageInstruction"]:
        quantity = dosage["doseAndRate"][0]["doseQuantity"]
        quantity.pop("code")
        quantity.pop("system")
        quantity["unit"] = unit
    (card,) = _rules(client, body)
    labels = [s["label"] for s in card["suggestions"]]
    assert labels == [
        "Keep the current dose (600 mg/day)",
        "Order a lower dose instead (about 400 mg/day)",
    ]
    updated = card["suggestions"][0]["actions"][0]["resource"]
    assert updated["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 300


def test_an_unreadable_dose_is_said_to_be_unreadable(client: TestClient) -> None:
    body = example()
    current_order(body)["dosageInstruction"] = [{"text": "titrate as tolerated"}]
    (card,) = _rules(client, body)
    assert "unknown (the dose could not be read from the order)" in card["detail"]
