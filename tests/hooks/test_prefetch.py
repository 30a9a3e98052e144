"""Prefetch and request data as real clients send it (#prefetch-template,
#providing-fhir-resources-to-a-cds-service, #extensions): absent keys, ``null``,
OperationOutcomes, Bundles without ``type``, and invalid resources among valid ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.hooks.support import (
    TestClient,
    as_patient_view,
    assert_cards_response,
    assert_operation_outcome,
    complaint,
    current_order,
    draft_order,
    example,
    expressions,
    service_url,
)

REQUIRED = ("medications", "conditions")
OPERATION_OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "timeout", "diagnostics": "query timed out"}],
}


def _post(client: TestClient, request: dict[str, Any]) -> Any:
    return client.post(service_url(request), json=request)


def _essence(response: Any) -> tuple[Any, ...]:
    """What a card says, without its fresh uuids."""
    (card,) = assert_cards_response(response)
    return (
        card["extension"]["restless-cds-rule"],
        card["indicator"],
        card["summary"],
        card["detail"],
        [s["label"] for s in card.get("suggestions", [])],
        [a["resource"] for s in card.get("suggestions", []) for a in s["actions"]],
    )


def _assert_baseline_card(client: TestClient, response: Any) -> None:
    """The published case's card, unchanged: what the valid resources alone produce."""
    baseline = example()
    expected = _essence(client.post(service_url(baseline), json=baseline))
    got = _essence(response)
    assert got[:2] == ("dose-review.draft-order", "warning")
    assert "amisulpride" in got[2]
    assert got == expected


def test_the_unchanged_example_gets_the_baseline_card(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 28, 30: prefetched searchset Bundles keyed as in discovery are used."""
    _assert_baseline_card(client, _post(client, request_body))


@pytest.mark.parametrize("key", REQUIRED)
def test_a_missing_required_key_is_412_naming_it(
    client: TestClient, request_body: dict[str, Any], key: str
) -> None:
    """Req 51, 54: a client omits a key it could not satisfy; without a FHIR server
    fetch the service answers 412 with an OperationOutcome naming ``prefetch.<key>``."""
    del request_body["prefetch"][key]

    issues = assert_operation_outcome(_post(client, request_body), 412)

    assert expressions(issues) == [f"prefetch.{key}"]


def test_no_prefetch_at_all_is_412_naming_every_required_key(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 23, 54: prefetch is optional in the request, but the rules need the data."""
    del request_body["prefetch"]

    issues = assert_operation_outcome(_post(client, request_body), 412)

    assert sorted(expressions(issues)) == [f"prefetch.{k}" for k in sorted(REQUIRED)]


@pytest.mark.parametrize("key", REQUIRED)
def test_a_required_key_holding_an_operation_outcome_is_412(
    client: TestClient, request_body: dict[str, Any], key: str
) -> None:
    """Req 50, 52, 54: an OperationOutcome in place of the data is an error the
    service checks for, not an empty result."""
    request_body["prefetch"][key] = copy.deepcopy(OPERATION_OUTCOME)

    issues = assert_operation_outcome(_post(client, request_body), 412)

    assert expressions(issues) == [f"prefetch.{key}"]
    assert "timed out" not in str(issues)


@pytest.mark.parametrize("state", ["absent", "null", "operation-outcome"])
def test_the_optional_patient_key_is_not_needed(
    client: TestClient, request_body: dict[str, Any], state: str
) -> None:
    """Req 37, 51, 52, 53: the ``patient`` key is advertised but not required."""
    if state == "absent":
        del request_body["prefetch"]["patient"]
    else:
        request_body["prefetch"]["patient"] = (
            None if state == "null" else copy.deepcopy(OPERATION_OUTCOME)
        )

    _assert_baseline_card(client, _post(client, request_body))


def test_a_null_conditions_key_means_no_data(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 53, 77: ``null`` is "no data", a 200; with no complaint nothing is flagged."""
    request_body["prefetch"]["conditions"] = None

    response = _post(client, request_body)

    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_a_null_medications_key_leaves_only_the_draft_order(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 53: ``null`` medications: the draft order alone, a drug not yet taken ordered
    for a patient with the complaint: an observation card, not a 412."""
    request_body["prefetch"]["medications"] = None

    (card,) = assert_cards_response(_post(client, request_body))

    assert card["extension"]["restless-cds-rule"] == "observation.new-drug"
    assert card["indicator"] == "info"


def test_bundles_without_type_and_bare_resources_are_accepted(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 30: draftOrders Bundles often have no ``type``; a prefetch value may be a
    single resource rather than a searchset Bundle."""
    request_body["context"]["draftOrders"].pop("type", None)
    for key in REQUIRED:
        request_body["prefetch"][key] = request_body["prefetch"][key]["entry"][0]["resource"]

    _assert_baseline_card(client, _post(client, request_body))


def _poisoned(template: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    resource = copy.deepcopy(template)
    resource["id"] = "poisoned"
    for path, value in change.items():
        target: Any = resource
        *parents, leaf = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = value
    return resource


RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# One wrong-typed element each, in an order the value sets recognise (amisulpride).
POISONED_ORDERS: dict[str, dict[str, Any]] = {
    "status-list": {"status": ["active"]},
    "coding-not-a-list": {"medicationCodeableConcept.coding": 5},
    "coding-system-a-list": {"medicationCodeableConcept.coding.0.system": [RXNORM]},
    "contained-not-a-list": {"contained": 5},
    "dosage-a-string": {"dosageInstruction": "400 mg twice daily"},
    "dose-value-a-word": {"dosageInstruction.0.doseAndRate.0.doseQuantity.value": "four"},
    "dose-and-rate-an-object": {
        "dosageInstruction.0.doseAndRate": {"doseQuantity": {"value": 400, "unit": "mg"}}
    },
    "authored-on-a-number": {"authoredOn": 20261022},
    "subject-a-string": {"subject": "Patient/rbs-50m"},
}


@pytest.mark.parametrize("name", sorted(POISONED_ORDERS))
def test_an_invalid_medication_request_is_skipped_and_the_rest_used(
    client: TestClient, request_body: dict[str, Any], name: str
) -> None:
    """Req 30, 74 (shared/conformance README: be lenient per resource): one prefetched
    MedicationRequest with a wrong-typed element is skipped; the valid ones still give
    the card, and the call never fails with a 500."""
    poisoned = _poisoned(current_order(request_body), POISONED_ORDERS[name])
    request_body["prefetch"]["medications"]["entry"].append({"resource": poisoned})

    _assert_baseline_card(client, _post(client, request_body))


@pytest.mark.parametrize(
    "name", ["status-list", "dose-value-a-word", "dose-and-rate-an-object", "subject-a-string"]
)
def test_an_invalid_draft_order_is_skipped_and_the_rest_used(
    client: TestClient, request_body: dict[str, Any], name: str
) -> None:
    """Req 22, 30, 74: the same per-resource leniency for context.draftOrders."""
    poisoned = _poisoned(draft_order(request_body), POISONED_ORDERS[name])
    request_body["context"]["draftOrders"]["entry"].append({"resource": poisoned})

    _assert_baseline_card(client, _post(client, request_body))


POISONED_CONDITIONS: dict[str, dict[str, Any]] = {
    "code-coding-not-a-list": {"code.coding": 7},
    "code-coding-system-a-list": {"code.coding.0.system": ["http://snomed.info/sct"]},
    "clinical-status-coding-not-a-list": {"clinicalStatus.coding": 3},
    "clinical-status-code-a-list": {"clinicalStatus.coding.0.code": ["active"]},
    "note-not-a-list": {"note": 5},
    "body-site-not-a-list": {"bodySite": 5},
    "onset-a-number": {"onsetDateTime": 5},
    "onset-not-a-date": {"onsetDateTime": "2026-13-45"},
}


@pytest.mark.parametrize("name", sorted(POISONED_CONDITIONS))
def test_an_invalid_condition_is_skipped_and_the_rest_used(
    client: TestClient, request_body: dict[str, Any], name: str
) -> None:
    """Req 30, 74: one Condition with a wrong-typed element is skipped; the valid
    complaint still gives the card."""
    poisoned = _poisoned(complaint(request_body), POISONED_CONDITIONS[name])
    request_body["prefetch"]["conditions"]["entry"].append({"resource": poisoned})

    _assert_baseline_card(client, _post(client, request_body))


@pytest.mark.parametrize(
    "entry",
    [
        {"fullUrl": "urn:uuid:0f6c5f8e-0000-4000-8000-000000000000"},
        "not an entry",
        {"resource": {"resourceType": 5}},
        {"resource": "MedicationRequest/x"},
        {"resource": {"resourceType": "Basic", "id": "other"}},
    ],
    ids=["no-resource", "string", "numeric-type", "resource-a-string", "unrelated-type"],
)
def test_unusable_bundle_entries_are_skipped(
    client: TestClient, request_body: dict[str, Any], entry: Any
) -> None:
    """Req 30: entries without a usable resource are skipped, in every Bundle."""
    request_body["context"]["draftOrders"]["entry"].append(entry)
    for key in REQUIRED:
        request_body["prefetch"][key]["entry"].insert(0, copy.deepcopy(entry))

    _assert_baseline_card(client, _post(client, request_body))


@pytest.mark.parametrize("value", ["not a resource", [1, 2], 7, True])
def test_a_prefetch_value_that_is_not_a_resource_counts_as_no_data(
    client: TestClient, request_body: dict[str, Any], value: Any
) -> None:
    """Req 30: a key whose value is not a resource is skipped, not a 500."""
    request_body["prefetch"]["patient"] = value

    _assert_baseline_card(client, _post(client, request_body))


def test_unknown_fields_and_extensions_are_accepted(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 214, 215: ``extension`` objects at the top level and in the context, and
    members this service does not know, are ignored."""
    request_body["extension"] = {"org.example.trace": {"id": "t-1", "hops": [1, 2]}}
    request_body["context"]["extension"] = {"org.example.context": {"ward": "3B"}}
    request_body["context"]["org.example.unknown"] = [{"x": 1}]
    request_body["unknownTopLevel"] = {"nested": True}
    request_body["prefetch"]["org.example.extra"] = None

    _assert_baseline_card(client, _post(client, request_body))


def test_an_extension_that_is_not_an_object_is_a_400(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 214: the value of an extension MUST be a JSON object."""
    request_body["extension"] = ["org.example.trace"]

    issues = assert_operation_outcome(_post(client, request_body), 400)

    assert expressions(issues) == ["extension"]


def test_patient_view_needs_no_draft_orders(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 22, 28: patient-view context is userId/patientId only; prefetch suffices."""
    request = as_patient_view(request_body)
    request["context"].pop("encounterId")

    (card,) = assert_cards_response(_post(client, request))

    assert card["extension"]["restless-cds-rule"] == "dose-review.current-drug"
    assert "suggestions" not in card
