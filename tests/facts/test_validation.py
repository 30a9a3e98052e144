"""R4B validation of one resource at a time: a model, or an issue naming the fields."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.errors import InputIssue
from cds.facts import MAX_JSON_DEPTH, validate_condition, validate_medication_request
from tests.facts.fhir_builders import ICD10CM, RXNORM, condition, dose, medication_request


def test_valid_medication_request_gives_the_r4b_model() -> None:
    raw = medication_request(
        id="m", codes=[(RXNORM, "46303")], dosages=[dose(300, per=(2, 1, "d"))]
    )
    model, issue = validate_medication_request(raw, "here")
    assert issue is None
    assert isinstance(model, MedicationRequest)
    assert model.id == "m"
    assert model.model_dump(mode="json", exclude_none=True) == raw


def test_valid_condition_gives_the_r4b_model() -> None:
    model, issue = validate_condition(condition(codes=[(ICD10CM, "G25.81")]), "here")
    assert issue is None
    assert isinstance(model, Condition)
    assert model.model_dump(mode="json", exclude_none=True)["code"] == {
        "coding": [{"system": ICD10CM, "code": "G25.81"}]
    }


def test_invalid_resource_names_fields_not_values() -> None:
    raw = medication_request(authoredOn="2026-99-99", subject="Patient/secret")
    model, issue = validate_medication_request(raw, "prefetch MedicationRequest #3")
    assert model is None
    assert issue == InputIssue(
        "prefetch MedicationRequest #3",
        "invalid MedicationRequest, skipped: authoredOn, subject",
    )


def test_missing_required_element_is_invalid() -> None:
    raw = condition()
    del raw["subject"]
    model, issue = validate_condition(raw, "c")
    assert model is None
    assert issue is not None
    assert "subject" in issue.message


def test_only_the_elements_read_are_validated() -> None:
    raw = condition(
        text="back itching",
        meta={"lastUpdated": "not a date"},
        identifier={"not": "a list"},
        category="problem-list-item",
    )
    raw["text"] = {"status": "bogus-status-but-unread", "div": 7}
    model, issue = validate_condition(raw, "c")
    assert issue is None
    assert model.code.text == "back itching"


def test_unknown_modifier_extension_is_not_silently_ignored() -> None:
    """Regression (FHIR R4 extensibility: a modifierExtension SHALL NOT be ignored): a
    modifierExtension can reverse a resource's meaning, yet validation drops the element
    and the condition is used as if it were plain. It should be refused with an issue."""
    raw = condition(codes=[(ICD10CM, "G25.81")])
    raw["modifierExtension"] = [
        {"url": "http://example.org/fhir/StructureDefinition/not-present", "valueBoolean": True}
    ]
    model, issue = validate_condition(raw, "prefetch Condition #0")
    assert model is None
    assert issue is not None
    assert "modifierExtension" in issue.message


@pytest.mark.parametrize(
    ("element", "value", "named"),
    [
        ("authoredOn", 20000, "authoredOn"),
        ("authoredOn", 1733000000.5, "authoredOn"),
        (
            "dispenseRequest",
            {"validityPeriod": {"start": 5}},
            "dispenseRequest.validityPeriod.start",
        ),
    ],
)
def test_a_number_where_a_date_belongs_is_refused(element: str, value: Any, named: str) -> None:
    """Regression: pydantic read ``"authoredOn": 20000`` as 1970-01-01T05:33:20Z (seconds
    since the epoch), so an order of today looked decades old. FHIR JSON dates are strings."""
    raw = medication_request(codes=[(RXNORM, "61381")])
    raw[element] = value
    model, issue = validate_medication_request(raw, "prefetch MedicationRequest #0")
    assert model is None
    assert issue is not None
    assert named in issue.message


def test_a_number_in_a_condition_date_or_timing_event_is_refused() -> None:
    raw = condition(codes=[(ICD10CM, "G25.81")])
    raw["onsetPeriod"] = {"start": "2026-01-01", "end": 7}
    assert validate_condition(raw, "c")[1] is not None
    order = medication_request(codes=[(RXNORM, "61381")])
    order["dosageInstruction"] = [{"timing": {"event": ["2026-01-01", 3]}}]
    _, issue = validate_medication_request(order, "m")
    assert issue is not None
    assert "dosageInstruction.0.timing.event" in issue.message


def test_string_dates_still_pass() -> None:
    raw = condition(codes=[(ICD10CM, "G25.81")])
    raw["onsetPeriod"] = {"start": "2026-01-01", "end": "2026-02"}
    model, issue = validate_condition(raw, "c")
    assert issue is None
    assert model is not None


def test_an_element_nested_past_the_walks_bound_is_refused_not_crashed() -> None:
    raw = condition(codes=[(ICD10CM, "G25.81")])
    nested: Any = "2026-01-01"
    for _ in range(MAX_JSON_DEPTH):
        nested = {"extension": [nested]}
    raw["note"] = [nested]
    model, issue = validate_condition(raw, "c")
    assert model is None
    assert issue is not None
    # the resource depth bound (64, for fhir.resources' stack) stops it before the walk's
    assert issue.message == "invalid Condition, skipped: note nested over 64 levels"


def _nested_extension(levels: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "v"}
    for _ in range(levels):
        extension = {"url": "http://example.org/node", "extension": [extension]}
    return extension


def test_nesting_past_the_limit_is_an_issue_naming_the_element_not_a_recursion_error() -> None:
    order = medication_request(codes=[(RXNORM, "46303")], dosages=[dose(300, per=(2, 1, "d"))])
    order["dosageInstruction"][0]["extension"] = [_nested_extension(125)]
    model, issue = validate_medication_request(order, "draft #0")
    assert model is None
    assert issue is not None
    assert "dosageInstruction nested over 64 levels" in issue.message


def test_nesting_within_the_limit_still_validates() -> None:
    order = medication_request(codes=[(RXNORM, "46303")], dosages=[dose(300, per=(2, 1, "d"))])
    # dosageInstruction [ {extension [ ... ] } ]: 2 levels, then 2 an extension level
    order["dosageInstruction"][0]["extension"] = [_nested_extension(30)]
    model, issue = validate_medication_request(order, "draft #0")
    assert issue is None
    assert isinstance(model, MedicationRequest)
