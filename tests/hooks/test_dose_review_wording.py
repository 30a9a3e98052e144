"""The draft-order dose review says what the draft does to the dose, through the bundled
rules over the service's interface: the published restless back case (amisulpride
600 mg/day, two 300 mg doses) with the draft's 2 doses a day set to each case."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hooks.support import TestClient, draft_order, service_url

SUMMARY = "Restless back on amisulpride: "


def _with_draft_dose(body: dict[str, Any], mg_per_dose: float | None) -> dict[str, Any]:
    dosage = draft_order(body)["dosageInstruction"][0]
    dosage.pop("text", None)
    if mg_per_dose is None:
        dosage.pop("doseAndRate")
    else:
        dosage["doseAndRate"][0]["doseQuantity"]["value"] = mg_per_dose
    return body


def _dose_reviews(client: TestClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(service_url(body), json=body)
    assert response.status_code == 200, response.text
    return [
        card
        for card in response.json()["cards"]
        if card["extension"]["restless-cds-rule"] == "dose-review.draft-order"
    ]


@pytest.mark.parametrize(
    ("mg_per_dose", "words"),
    [
        (400, "review the dose before raising it"),  # 800 mg/day
        (300, "review the dose before continuing it"),  # 600 mg/day, as now
        (0, "review the dose before lowering it"),  # not a reduction the rules compare
        (None, "review the dose of this order"),  # the draft's dose cannot be read
    ],
    ids=["raised", "same", "lowered-to-zero", "unknown"],
)
def test_the_summary_says_what_the_draft_does(
    client: TestClient, request_body: dict[str, Any], mg_per_dose: float | None, words: str
) -> None:
    (card,) = _dose_reviews(client, _with_draft_dose(request_body, mg_per_dose))
    assert card["summary"] == SUMMARY + words


def test_a_lowering_draft_gets_no_dose_review(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """A draft below the current dose already is the review (rule dose-change.reduction,
    which compares doses above 0 only: a 0 mg draft gets the "before lowering it" card)."""
    assert _dose_reviews(client, _with_draft_dose(request_body, 200)) == []
