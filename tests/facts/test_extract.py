"""extract_facts: triage on raw JSON, validate only candidates, keep going past bad ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cds.facts import (
    ComplaintFact,
    FindingFact,
    Knowledge,
    MedicationFact,
    epoch_day,
    extract_facts,
)
from cds.fhir import InputIssue, PatientRecord, collect_record
from tests.conftest import load_example
from tests.facts.fhir_builders import ICD10CM, RXNORM, condition, dose, medication_request

TODAY = dt.date(2026, 11, 20)
REQUIRED = ["medications", "conditions"]


def bundle(*resources: Any) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def test_restless_back_example(knowledge: Knowledge) -> None:
    example = load_example("restless-back-amisulpride.json")
    record = collect_record(
        example["context"]["draftOrders"],
        example["prefetch"],
        REQUIRED,
        patient_id=example["context"]["patientId"],
    )
    out = extract_facts(record, knowledge, TODAY)
    assert (out.validated, out.skipped, out.issues) == (3, 0, [])
    draft, active, complaint = out.facts
    assert isinstance(draft, MedicationFact)
    assert (draft.draft, draft.mg_per_day, draft.start_day) == (True, 800.0, epoch_day(TODAY))
    assert isinstance(active, MedicationFact)
    assert (active.draft, active.mg_per_day) == (False, 600.0)
    assert active.start_day == epoch_day(dt.date(2026, 10, 22))
    assert isinstance(complaint, ComplaintFact)
    assert complaint.region == "back"
    assert complaint.rest_provoked
    assert complaint.relieved_by_movement


def busy_patient() -> PatientRecord:
    """A long record of which only four resources matter to the rules."""
    unrelated_orders = [
        medication_request(id=f"other-{i}", text=name, dosages=[dose(10)])
        for i, name in enumerate(
            [
                "atorvastatin 20 mg",
                "metformin 500 mg",
                "ramipril 5 mg",
                "omeprazole 20 mg",
                "paracetamol 1 g",
                "amlodipine 5 mg",
                "levothyroxine 50 mcg",
                "ibuprofen 400 mg",
            ]
        )
    ]
    stopped = [
        medication_request(id=f"stopped-{s}", status=s, codes=[(RXNORM, "46303")])
        for s in ("stopped", "completed", "entered-in-error", "cancelled")
    ]
    # invalid, but never validated: it is not a candidate
    broken_unrelated = medication_request(id="broken", text="metformin", authoredOn="yesterday")
    unrelated_conditions = [
        condition(id=f"cond-{i}", text=text)
        for i, text in enumerate(
            [
                "Essential hypertension",
                "Type 2 diabetes",
                "Hyperlipidaemia",
                "Schizophrenia",
                "Tobacco use",
                "Obesity",
                "Gastro-oesophageal reflux",
            ]
        )
    ]
    past = [
        condition(id="old-back", clinical="resolved", text="back pain"),
        condition(id="refuted-rls", verification="refuted", codes=[(ICD10CM, "G25.81")]),
        condition(id="broken-cond", text="hypertension", onsetDateTime="last year"),
    ]
    candidate_order = medication_request(
        id="sertraline", text="sertraline 100 mg", dosages=[dose(100)]
    )
    candidate_condition = condition(id="legs", text="restless legs when sitting")
    return PatientRecord(
        medication_requests=[*unrelated_orders, *stopped, broken_unrelated, candidate_order],
        conditions=[*unrelated_conditions, *past, candidate_condition],
    )


def test_only_candidates_are_validated(knowledge: Knowledge) -> None:
    out = extract_facts(busy_patient(), knowledge, TODAY)
    # stopped and completed orders are past exposures (candidates); cancelled and
    # entered-in-error orders never exposed the patient
    assert out.validated == 2 + 2
    assert out.skipped == 8 + 2 + 1 + 7 + 3
    assert out.issues == []  # the broken resources were never validated
    assert [
        (f.source, f.current) if isinstance(f, MedicationFact) else (f.source, None)
        for f in out.facts
    ] == [
        ("MedicationRequest/stopped-stopped", False),
        ("MedicationRequest/stopped-completed", False),
        ("MedicationRequest/sertraline", True),
        ("Condition/legs", None),
    ]


def test_invalid_candidate_is_an_issue_and_the_rest_still_yield(knowledge: Knowledge) -> None:
    bad_order = medication_request(id="bad", codes=[(RXNORM, "46303")], authoredOn="not-a-date")
    bad_condition = condition(id="bad-c", codes=[(ICD10CM, "G25.81")], recordedDate="sometime")
    record = PatientRecord(
        draft_orders=[medication_request(id="d", status="draft", codes=[(RXNORM, "46303")])],
        medication_requests=[bad_order, medication_request(id="ok", text="sertraline")],
        conditions=[bad_condition, condition(id="ok-c", text="back itching at night")],
    )
    out = extract_facts(record, knowledge, TODAY)
    assert out.validated == 5
    assert [f.source for f in out.facts] == [
        "MedicationRequest/d",
        "MedicationRequest/ok",
        "Condition/ok-c",
    ]
    assert len(out.issues) == 2
    order_issue, condition_issue = out.issues
    assert order_issue.message.startswith("invalid MedicationRequest, skipped: ")
    assert "authoredOn" in order_issue.message
    assert condition_issue.where == "prefetch Condition #0"
    assert "recordedDate" in condition_issue.message
    for issue in out.issues:  # fields are named, values are never echoed
        assert "not-a-date" not in issue.message
        assert "sometime" not in issue.message


def test_issue_location_counts_prefetch_orders_from_zero(knowledge: Knowledge) -> None:
    """Regression: extract_facts numbers draft and prefetch orders in one sequence, so the first
    prefetch order behind one draft is reported as "prefetch MedicationRequest #1"."""
    record = PatientRecord(
        draft_orders=[medication_request(id="d", status="draft", codes=[(RXNORM, "46303")])],
        medication_requests=[
            medication_request(id="bad", codes=[(RXNORM, "46303")], authoredOn="not-a-date")
        ],
    )
    (issue,) = extract_facts(record, knowledge, TODAY).issues
    assert issue.where == "prefetch MedicationRequest #0"


def test_invalid_draft_order_is_located_in_draft_orders(knowledge: Knowledge) -> None:
    record = PatientRecord(
        draft_orders=[
            medication_request(id="d0", status="draft", codes=[(RXNORM, "46303")]),
            medication_request(id="d1", status="draft", text="sertraline", subject="Patient/x"),
        ]
    )
    out = extract_facts(record, knowledge, TODAY)
    assert out.issues == [
        InputIssue(
            "draftOrders MedicationRequest #1", "invalid MedicationRequest, skipped: subject"
        )
    ]
    assert [f.source for f in out.facts] == ["MedicationRequest/d0"]


def test_record_issues_are_carried_over(knowledge: Knowledge) -> None:
    issue = InputIssue("prefetch.conditions.entry[0]", "entry without a resource")
    out = extract_facts(PatientRecord(issues=[issue]), knowledge, TODAY)
    assert out.issues == [issue]
    assert (out.facts, out.validated, out.skipped) == ([], 0, 0)


def test_elements_the_rules_do_not_read_do_not_invalidate(knowledge: Knowledge) -> None:
    order = medication_request(
        id="m", text="sertraline", meta={"lastUpdated": "never"}, identifier="not-a-list"
    )
    out = extract_facts(PatientRecord(medication_requests=[order]), knowledge, TODAY)
    assert (out.issues, [f.source for f in out.facts]) == ([], ["MedicationRequest/m"])


def test_contained_medication_reference(knowledge: Knowledge) -> None:
    draft = medication_request(
        id="d",
        status="draft",
        contained=[
            {
                "resourceType": "Medication",
                "id": "q",
                "code": {"coding": [{"system": RXNORM, "code": "312743"}]},
            }
        ],
        medicationReference={"reference": "#q"},
        dosageInstruction=[dose(100, per=(3, 1, "d"))],
    )
    record = collect_record(
        {"resourceType": "Bundle", "entry": [{"resource": draft}]},
        {"medications": None, "conditions": None},
        REQUIRED,
        patient_id="p1",
    )
    (fact,) = extract_facts(record, knowledge, TODAY).facts
    assert isinstance(fact, MedicationFact)
    assert (fact.ingredient, fact.recognised_by, fact.mg_per_day, fact.draft) == (
        "quetiapine",
        "rxnorm-product",
        300.0,
        True,
    )


def test_medication_elsewhere_in_the_request(knowledge: Knowledge) -> None:
    medication = {"resourceType": "Medication", "id": "ola", "code": {"text": "olanzapine 10 mg"}}
    order = medication_request(id="o", medicationReference={"reference": "Medication/ola"})
    prefetch = {"medications": bundle(order, medication), "conditions": None}
    (fact,) = extract_facts(
        collect_record(None, prefetch, REQUIRED, patient_id="p1"), knowledge, TODAY
    ).facts
    assert isinstance(fact, MedicationFact)
    assert (fact.ingredient, fact.recognised_by, fact.display) == (
        "olanzapine",
        "text",
        "olanzapine 10 mg",
    )


def test_contained_medication_of_another_order_is_not_visible(knowledge: Knowledge) -> None:
    owner = medication_request(
        id="owner",
        contained=[{"resourceType": "Medication", "id": "m", "code": {"text": "sertraline"}}],
        medicationReference={"reference": "#m"},
    )
    stranger = medication_request(id="stranger", medicationReference={"reference": "#m"})
    out = extract_facts(PatientRecord(medication_requests=[owner, stranger]), knowledge, TODAY)
    assert [f.source for f in out.facts] == ["MedicationRequest/owner"]
    assert out.skipped == 1


def test_findings_come_through(knowledge: Knowledge) -> None:
    record = PatientRecord(conditions=[condition(id="aka", codes=[(ICD10CM, "G25.71")])])
    (fact,) = extract_facts(record, knowledge, TODAY).facts
    assert isinstance(fact, FindingFact)
    assert fact.category == "akathisia"


def test_a_product_code_sent_without_its_name_still_gives_the_strength(
    knowledge: Knowledge,
) -> None:
    """RxNorm 312744 is "quetiapine 25 MG Oral Tablet" in drug_products.tsv: an order that
    sends only the code, dosed 2 tablets twice a day, is 100 mg/day."""
    order = medication_request(
        codes=[(RXNORM, "312744")], dosages=[dose(2, "{tablet}", per=(2, 1, "d"))]
    )
    bare = medication_request(id="mr2", codes=[(RXNORM, "312744")], dosages=[dose(2, "mL")])
    record = collect_record(
        None,
        {"medications": bundle(order, bare), "conditions": None},
        REQUIRED,
        patient_id="p1",
    )
    facts = [
        f for f in extract_facts(record, knowledge, TODAY).facts if isinstance(f, MedicationFact)
    ]
    assert [(f.source, f.ingredient, f.mg_per_day) for f in facts] == [
        ("MedicationRequest/mr1", "quetiapine", 100.0),
        ("MedicationRequest/mr2", "quetiapine", None),  # mL: no strength makes it mg
    ]
