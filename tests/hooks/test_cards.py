"""Service responses: the cards array and every card attribute (#cds-service-response,
#card-attributes, #source, #suggestion, #action, #link, #coding, #use-of-json)."""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import load_example
from tests.hooks.support import (
    HOSTILE,
    TestClient,
    as_order_sign,
    as_patient_view,
    assert_cards_response,
    assert_no_null_or_empty,
    complaint,
    current_order,
    draft_order,
    example,
    null_or_empty_paths,
    service_url,
)

Variation = Callable[[dict[str, Any]], dict[str, Any]]


def _unchanged(request: dict[str, Any]) -> dict[str, Any]:
    return request


def _complaint_before_drug(request: dict[str, Any]) -> dict[str, Any]:
    complaint(request)["onsetDateTime"] = "2020-01-01"
    return as_patient_view(request)


def _hostile_texts(request: dict[str, Any]) -> dict[str, Any]:
    text = "Itching in the back when lying down " + " ".join(HOSTILE.values())
    complaint(request)["code"]["text"] = text
    draft_order(request)["medicationCodeableConcept"]["text"] += HOSTILE["script"]
    request["hookInstance"] = HOSTILE["emoji-rtl"]
    return request


def _no_bundle_types(request: dict[str, Any]) -> dict[str, Any]:
    for bundle in (request["context"]["draftOrders"], *request["prefetch"].values()):
        bundle.pop("type", None)
    return request


# variation -> (indicator, rule that fires, has suggestions)
VARIATIONS: dict[str, tuple[Variation, str, str, bool]] = {
    "order-select": (_unchanged, "warning", "dose-review.draft-order", True),
    "order-sign": (as_order_sign, "warning", "dose-review.draft-order", True),
    "patient-view": (as_patient_view, "warning", "dose-review.current-drug", False),
    "no-time-link": (_complaint_before_drug, "info", "observation.no-time-link", False),
    "hostile-texts": (_hostile_texts, "warning", "dose-review.draft-order", True),
    "bundles-without-type": (_no_bundle_types, "warning", "dose-review.draft-order", True),
}


@pytest.mark.parametrize("name", sorted(VARIATIONS))
def test_every_card_keeps_the_card_invariants(client: TestClient, name: str) -> None:
    """Req 1, 3, 74, 80, 83, 87, 88, 90, 92, 93, 95, 96, 98, 100, 103, 105, 117, 119,
    124, 127, 128, 130, 131, 136, 138, 139, 141, 142, 147, 214, 216, 217, 219: one card
    per finding, each with a uuid, a summary under 140 characters, an allowed indicator,
    source.label, suggestions with uuid/label/described actions and a selectionBehavior,
    overrideReasons as Codings with display, links absolute; no null or empty element."""
    variation, indicator, rule, has_suggestions = VARIATIONS[name]
    request = variation(example())

    cards = assert_cards_response(client.post(service_url(request), json=request))

    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == indicator
    assert "amisulpride" in card["summary"]
    assert card["extension"]["restless-cds-rule"] == rule
    assert ("suggestions" in card) is has_suggestions
    assert card["overrideReasons"]
    assert card["links"]


def test_the_restless_back_card_offers_a_dose_review(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 92, 93, 95, 99, 100, 136: the published case gets one warning naming
    amisulpride, two mutually exclusive suggestions and coded override reasons."""
    cards = assert_cards_response(client.post(service_url(request_body), json=request_body))

    (card,) = cards
    assert card["indicator"] == "warning"
    assert "amisulpride" in card["summary"]
    assert "back" in card["summary"]
    assert card["selectionBehavior"] == "at-most-one"
    labels = [s["label"] for s in card["suggestions"]]
    assert len(labels) == 2
    assert len(set(labels)) == 2
    assert {r["system"] for r in card["overrideReasons"]} == {"urn:restless-cds:override-reason"}
    codes = [r["code"] for r in card["overrideReasons"]]
    assert len(codes) == len(set(codes))
    assert card["source"]["label"] == "restless-cds"


def _daily_mg(order: dict[str, Any]) -> float:
    total = 0.0
    for dosage in order["dosageInstruction"]:
        per_day = dosage["timing"]["repeat"]["frequency"] / dosage["timing"]["repeat"]["period"]
        total += sum(r["doseQuantity"]["value"] for r in dosage["doseAndRate"]) * per_day
    return total


def _without_doses(order: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(order)
    for dosage in stripped["dosageInstruction"]:
        dosage.pop("text", None)
        dosage.pop("patientInstruction", None)
        for rate in dosage["doseAndRate"]:
            rate["doseQuantity"].pop("value")
    return stripped


def test_suggestions_update_the_whole_draft_order_to_a_lower_dose(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 125, 127, 128, 130, 131, 132: each suggestion is one ``update`` of the draft
    MedicationRequest, holding the resource in its entirety (same id, every field kept)
    with only the dose changed: first back to the current dose, then lower, both below
    the ordered one; no free text still states the ordered dose."""
    draft = draft_order(request_body)
    ordered = _daily_mg(draft)
    current = _daily_mg(current_order(request_body))

    (card,) = assert_cards_response(client.post(service_url(request_body), json=request_body))

    suggested = []
    for suggestion in card["suggestions"]:
        (action,) = suggestion["actions"]
        assert action["type"] == "update"
        resource = action["resource"]
        assert resource["resourceType"] == "MedicationRequest"
        assert resource["id"] == draft["id"]
        assert _without_doses(resource) == _without_doses(draft)
        stale = draft["dosageInstruction"][0]["text"]
        assert stale not in json.dumps(resource)
        suggested.append(_daily_mg(resource))
    assert len(suggested) == 2
    assert suggested[0] == current
    assert suggested[1] < current < ordered


def test_card_and_suggestion_uuids_are_unique(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 80, 119: a card's uuid identifies it; calls of two hook instances never share
    one, and the same card in a repeated call of one hook instance keeps its uuid (so
    feedback on either answer names the same card)."""
    uuids: list[str] = []
    for instance in (
        "d3b07384-d9a0-4c1b-9f6e-000000000001",
        "d3b07384-d9a0-4c1b-9f6e-000000000002",
    ):
        body = {**request_body, "hookInstance": instance}
        for card in assert_cards_response(client.post(service_url(body), json=body)):
            uuids.append(card["uuid"])
            uuids.extend(s["uuid"] for s in card.get("suggestions", []))

    assert len(uuids) == 6
    assert len(set(uuids)) == len(uuids)

    def answer() -> list[dict[str, Any]]:
        return assert_cards_response(client.post(service_url(request_body), json=request_body))

    first, again = answer(), answer()
    assert again == first  # the identical card, uuids included
    changed = copy.deepcopy(request_body)
    draft = changed["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] += 100
    (other,) = assert_cards_response(client.post(service_url(changed), json=changed))
    assert other["uuid"] != first[0]["uuid"]  # another order: another card


def _conditions_null(request: dict[str, Any]) -> dict[str, Any]:
    request["prefetch"]["conditions"] = None
    return request


def _complaint_refuted(request: dict[str, Any]) -> dict[str, Any]:
    status = complaint(request)["verificationStatus"]["coding"][0]
    status["code"] = "entered-in-error"
    return request


def _drug_stopped(request: dict[str, Any]) -> dict[str, Any]:
    current_order(request)["status"] = "stopped"
    request["context"]["draftOrders"]["entry"] = []
    return as_order_sign(request)


NOTHING_TO_FLAG: dict[str, Callable[[], dict[str, Any]]] = {
    "conditions-null": lambda: _conditions_null(example()),
    "complaint-entered-in-error": lambda: _complaint_refuted(example()),
    "drug-stopped-no-draft": lambda: _drug_stopped(example()),
    "no-provoking-drug": lambda: load_example("restless-back-no-provoking-drug.json"),
    "mechanical-back-pain": lambda: load_example("mechanical-back-pain-amisulpride.json"),
}


@pytest.mark.parametrize("name", sorted(NOTHING_TO_FLAG))
def test_nothing_to_flag_is_exactly_an_empty_cards_array(client: TestClient, name: str) -> None:
    """Req 3, 74, 77: no guidance is a 200 with ``{"cards": []}`` and nothing else."""
    request = NOTHING_TO_FLAG[name]()

    response = client.post(service_url(request), json=request)

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    assert response.json() == {"cards": []}


def test_suggested_resources_carry_no_null_or_empty_elements(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 3: the draft a client sends may hold ``null`` or empty elements (not valid
    FHIR JSON either); the updated resource the service returns must not echo them."""
    draft_order(request_body).update({"note": [], "reasonCode": None, "meta": {}})

    response = client.post(service_url(request_body), json=request_body)

    assert response.status_code == 200
    (card,) = response.json()["cards"]
    assert card["suggestions"], "the draft should still get its dose suggestions"
    resources = [a["resource"] for s in card["suggestions"] for a in s["actions"]]
    problems = [p for r in resources for p in null_or_empty_paths(r, "resource")]
    assert problems == [], f"null or empty JSON elements at {problems}"


def test_the_null_and_empty_walker_sees_deep_elements() -> None:
    """Req 3: the walker the other tests rely on finds nested nulls and empties, and
    allows only the top-level empty cards array."""
    body = {"cards": [{"a": {"b": [1, {"c": None}, ""]}, "d": {}, "e": [], "f": "x"}]}

    assert list(null_or_empty_paths(body)) == [
        "$.cards[0].a.b[1].c",
        "$.cards[0].a.b[2]",
        "$.cards[0].d",
        "$.cards[0].e",
    ]
    assert_no_null_or_empty({"cards": []})
    with pytest.raises(AssertionError):
        assert_no_null_or_empty({"cards": [], "systemActions": []})


def test_the_example_is_answered_well_within_500_ms(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 27: CDS Services SHOULD respond on the order of 500 ms (median of 5 calls,
    after one warm-up, in process)."""
    client.post(service_url(request_body), json=request_body)
    durations = []
    for _ in range(5):
        started = time.perf_counter()
        response = client.post(service_url(request_body), json=request_body)
        durations.append(time.perf_counter() - started)
        assert response.status_code == 200

    assert statistics.median(durations) < 0.5
