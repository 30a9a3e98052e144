"""The README's Sandbox headline end to end over real HTTP: the request the CDS Hooks
Sandbox's Rx View sends for "venlafaxine 75 MG Oral Tablet", 2 a day, for patient
``ex-rls-venlafaxine-sandbox-42f``, and the suggestions it gets back.

The request is built the way the Sandbox builds it (read in github:cds-hooks/sandbox at
3b7e255, ``src/reducers/medication-reducers.js`` ``createFhirResource`` and
``src/components/RxView/rx-view.jsx``): a draft ``MedicationRequest/request-123`` dosed
``N {pill}`` with no human unit, ``frequency`` per 1 ``d``, ``dispenseRequest`` with a
30-day supply, ``category`` sent as one object (R4 has a list), a chosen reason's code
as ``reasonCode`` (one object too), ``draftOrders`` a Bundle without ``type``; its
prefetch is what a FHIR server holding the example bundle answers to our templates.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from tests.conftest import EXAMPLES
from tests.hooks.support import assert_cards_response
from tests.hooks.test_http_e2e import base_url, http  # noqa: F401 (fixtures: real uvicorn)

PATIENT = "ex-rls-venlafaxine-sandbox-42f"
BUNDLE = EXAMPLES / "bundles" / "restless-legs-venlafaxine-sandbox-increase.bundle.json"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
VENLAFAXINE_75 = ("313586", "venlafaxine 75 MG Oral Tablet")
FREQUENCIES = {"daily": 1, "bid": 2, "tid": 3, "qid": 4}  # the Rx View's choices
CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "code": "community",
        }
    ]
}


def sandbox_draft(
    number: int,
    frequency: str = "daily",
    *,
    start: str | None = None,
    reason: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``createFhirResource`` for FHIR 4.0.1, key for key."""
    code, name = VENLAFAXINE_75
    repeat: dict[str, Any] = {"frequency": FREQUENCIES[frequency], "period": 1, "periodUnit": "d"}
    if start is not None:
        repeat["boundsPeriod"] = {"start": start}
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "request-123",
        "status": "draft",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "authoredOn": dt.date.today().isoformat(),
        "dosageInstruction": [
            {
                "timing": {"repeat": repeat},
                "doseAndRate": [
                    {"doseQuantity": {"value": number, "system": UCUM, "code": "{pill}"}}
                ],
            }
        ],
        "dispenseRequest": {
            "expectedSupplyDuration": {"value": 30, "unit": "days", "system": UCUM, "code": "d"}
        },
        "intent": "order",
        "category": CATEGORY,
        "medicationCodeableConcept": {
            "text": name,
            "coding": [{"display": name, "system": RXNORM, "code": code}],
        },
    }
    if reason is not None:
        resource["reasonCode"] = reason
    return resource


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def sandbox_request(draft: dict[str, Any]) -> dict[str, Any]:
    """``callServices``: hookInstance, hook, fhirServer, context, prefetch."""
    bundle = json.loads(BUNDLE.read_text(encoding="utf-8"))
    records = [e["resource"] for e in bundle["entry"]]
    by_type = {
        t: [r for r in records if r["resourceType"] == t]
        for t in ("Patient", "MedicationRequest", "Condition")
    }
    return {
        "hookInstance": str(uuid.uuid4()),
        "hook": "order-select",
        "fhirServer": "http://127.0.0.1:8090/fhir",
        "context": {
            "patientId": PATIENT,
            "userId": "Practitioner/COREPRACTITIONER1",
            "selections": ["MedicationRequest/request-123"],
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]},
        },
        "prefetch": {
            "patient": by_type["Patient"][0],
            "medications": _searchset(by_type["MedicationRequest"]),
            "conditions": _searchset(by_type["Condition"]),
        },
    }


def _call(http: httpx.Client, draft: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    response = http.post("/cds-services/restless-order-select", json=sandbox_request(draft))
    (card,) = assert_cards_response(response)
    return card


def _dose(resource: dict[str, Any]) -> dict[str, Any]:
    quantity: dict[str, Any] = resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    return quantity


@pytest.mark.parametrize(
    "variation",
    [{}, {"start": dt.date.today().isoformat()}, {"reason": {"text": "Generalised anxiety"}}],
    ids=["as-sent", "with-a-start-date", "with-a-chosen-reason"],
)
def test_the_headline_gets_the_increase_and_suggestions_in_tablets(
    http: httpx.Client,  # noqa: F811
    variation: dict[str, Any],
) -> None:
    """venlafaxine 75 MG Oral Tablet, 2 {pill} daily, on 75 mg/day: the card states
    75 -> 150 mg/day; "keep the current dose" is 1 {pill} of the same product; the lower
    dose (about 50 mg/day, not a whole tablet) is written in mg of venlafaxine."""
    draft = sandbox_draft(2, **variation)

    card = _call(http, draft)

    assert card["extension"]["restless-cds-rule"] == "dose-review.draft-order"
    assert "current dose 75 mg/day; this order 150 mg/day" in card["detail"]
    assert [s["label"] for s in card["suggestions"]] == [
        "Keep the current dose (75 mg/day: 1 tablet once a day)",
        "Order a lower dose instead (about 50 mg/day: venlafaxine 50 mg once a day)",
    ]
    keep, lower = (s["actions"][0] for s in card["suggestions"])
    for action in (keep, lower):
        assert action["type"] == "update"
        resource = action["resource"]
        MedicationRequest.model_validate(resource)  # valid R4, though the draft was not
        assert f"MedicationRequest/{resource['id']}" == "MedicationRequest/request-123"
        assert resource["category"] == [CATEGORY]
        assert resource["dosageInstruction"][0]["timing"] == draft["dosageInstruction"][0]["timing"]
        assert resource["dispenseRequest"] == draft["dispenseRequest"]
        if "reason" in variation:
            assert resource["reasonCode"] == [variation["reason"]]
    assert keep["resource"]["medicationCodeableConcept"] == draft["medicationCodeableConcept"]
    assert _dose(keep["resource"]) == {"value": 1, "system": UCUM, "code": "{pill}"}
    assert lower["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "39786"
    assert _dose(lower["resource"]) == {"value": 50, "unit": "mg", "system": UCUM, "code": "mg"}


def test_one_pill_twice_a_day_is_the_same_increase_written_in_mg(
    http: httpx.Client,  # noqa: F811
) -> None:
    """1 {pill} twice a day is also 150 mg/day, but 75 mg/day would be half a tablet
    twice a day, which the service does not propose for a tablet the draft does not
    split: both suggestions are in mg of venlafaxine, twice a day."""
    card = _call(http, sandbox_draft(1, "bid"))

    assert "this order 150 mg/day" in card["detail"]
    assert [s["label"] for s in card["suggestions"]] == [
        "Keep the current dose (75 mg/day: venlafaxine 37.5 mg twice a day)",
        "Order a lower dose instead (about 50 mg/day: venlafaxine 25 mg twice a day)",
    ]
    for suggestion in card["suggestions"]:
        MedicationRequest.model_validate(suggestion["actions"][0]["resource"])


def test_the_same_dose_as_today_offers_only_the_lower_dose(
    http: httpx.Client,  # noqa: F811
) -> None:
    """1 {pill} daily is the current 75 mg/day: nothing to keep, only a lower dose."""
    card = _call(http, sandbox_draft(1))

    assert "current dose 75 mg/day; this order 75 mg/day" in card["detail"]
    assert [s["label"] for s in card["suggestions"]] == [
        "Order a lower dose instead (about 50 mg/day: venlafaxine 50 mg once a day)",
    ]
