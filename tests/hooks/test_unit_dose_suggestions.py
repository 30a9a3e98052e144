"""Suggestions for drafts dosed in units of their product, through the service over real
HTTP (uvicorn on loopback): the strength comes from the product's name, its RxNorm code
alone (value sets), or a contained Medication; capsules and liquids too."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from tests.conftest import load_example
from tests.hooks.support import assert_cards_response, current_order, draft_order
from tests.hooks.test_http_e2e import base_url, http  # noqa: F401 (fixtures: real uvicorn)

EXAMPLE = "restless-legs-venlafaxine-sandbox-increase.json"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _example() -> dict[str, Any]:
    return copy.deepcopy(load_example(EXAMPLE))


def _suggestions(http: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:  # noqa: F811
    (card,) = assert_cards_response(http.post("/cds-services/restless-order-select", json=body))
    assert card["extension"]["restless-cds-rule"] == "dose-review.draft-order"
    found: list[dict[str, Any]] = card.get("suggestions", [])
    for suggestion in found:
        MedicationRequest.model_validate(suggestion["actions"][0]["resource"])
    return found


def _quantity(suggestion: dict[str, Any]) -> dict[str, Any]:
    resource = suggestion["actions"][0]["resource"]
    quantity: dict[str, Any] = resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    return quantity


def _set_product(order: dict[str, Any], code: str | None, name: str | None) -> None:
    coding: dict[str, Any] = {"system": RXNORM}
    if code:
        coding["code"] = code
    if name:
        coding["display"] = name
    order["medicationCodeableConcept"] = {"coding": [coding]}


def test_a_product_code_alone_gives_the_strength(http: httpx.Client) -> None:  # noqa: F811
    """RxNorm 313586 without its name: the value sets name it venlafaxine 75 MG Oral
    Tablet, so keeping 75 mg/day is still 1 tablet."""
    body = _example()
    _set_product(draft_order(body), "313586", None)
    keep, lower = _suggestions(http, body)
    assert keep["label"] == "Keep the current dose (75 mg/day: 1 tablet once a day)"
    assert _quantity(keep)["value"] == 1
    assert _quantity(lower)["code"] == "mg"


def test_capsules_keep_whole_capsules(http: httpx.Client) -> None:  # noqa: F811
    """24 HR venlafaxine 75 MG Extended Release Oral Capsule (RxNorm 313585), 2 a day."""
    body = _example()
    name = "24 HR venlafaxine 75 MG Extended Release Oral Capsule"
    for order in (draft_order(body), current_order(body)):
        _set_product(order, "313585", name)
        quantity = order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
        quantity.update(unit="capsule", code="{capsule}")
    keep, lower = _suggestions(http, body)
    assert keep["label"] == "Keep the current dose (75 mg/day: 1 capsule once a day)"
    assert _quantity(keep) == {
        "value": 1,
        "unit": "capsule",
        "system": "http://unitsofmeasure.org",
        "code": "{capsule}",
    }
    assert lower["label"] == (
        "Order a lower dose instead (about 50 mg/day: venlafaxine 50 mg once a day)"
    )


def test_a_contained_medication_product(http: httpx.Client) -> None:  # noqa: F811
    body = _example()
    order = draft_order(body)
    concept = order.pop("medicationCodeableConcept")
    order["contained"] = [{"resourceType": "Medication", "id": "med", "code": concept}]
    order["medicationReference"] = {"reference": "#med"}
    keep, lower = _suggestions(http, body)
    assert keep["actions"][0]["resource"]["medicationReference"] == {"reference": "#med"}
    assert _quantity(keep)["value"] == 1
    assert "contained" not in lower["actions"][0]["resource"]


@pytest.mark.parametrize(("draft_ml", "keep_ml"), [(2, 1), (3, 1.5)], ids=["whole-ml", "half-ml"])
def test_a_liquid_keeps_its_product_in_ml(
    http: httpx.Client,  # noqa: F811
    draft_ml: float,
    keep_ml: float,
) -> None:
    """risperidone 1 MG/ML Oral Solution twice a day: keeping the current dose is a
    volume an oral syringe measures, in mL of the same solution."""
    body = _example()
    name = "risperidone 1 MG/ML Oral Solution"
    for order, ml in ((draft_order(body), draft_ml), (current_order(body), keep_ml)):
        order["medicationCodeableConcept"] = {"text": name}
        dosage = order["dosageInstruction"][0]
        dosage.pop("text")
        dosage["timing"] = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}
        dosage["doseAndRate"][0]["doseQuantity"] = {
            "value": ml,
            "unit": "mL",
            "system": "http://unitsofmeasure.org",
            "code": "mL",
        }
    keep, _ = _suggestions(http, body)
    assert keep["label"] == (
        f"Keep the current dose ({keep_ml * 2:g} mg/day: {keep_ml:g} mL twice a day)"
    )
    assert _quantity(keep)["value"] == keep_ml
    assert keep["actions"][0]["resource"]["medicationCodeableConcept"] == {"text": name}
