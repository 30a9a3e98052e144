"""Lab Observations through extract_facts: the newest usable result of each test, one
validation for a long history, bad labs as input issues that never carry the value."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cds.facts import Knowledge, extract_facts
from cds.facts.model import LabFact, LabsReadFact
from cds.fhir import collect_record

TODAY = dt.date(2026, 12, 5)
REQUIRED = ["medications", "conditions"]


def ferritin(rid: str, value: Any, date: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2276-4"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": date,
        "valueQuantity": {
            "value": value,
            "unit": "ng/mL",
            "system": "http://unitsofmeasure.org",
            "code": "ng/mL",
        },
        **extra,
    }


def extract(knowledge: Knowledge, *observations: Any, labs_key: bool = True) -> Any:
    prefetch: dict[str, Any] = {"medications": None, "conditions": None}
    if labs_key:
        prefetch["observations"] = {
            "resourceType": "Bundle",
            "entry": [{"resource": o} for o in observations],
        }
    record = collect_record(None, prefetch, REQUIRED, patient_id="p1")
    return extract_facts(record, knowledge, TODAY)


def labs(out: Any) -> list[LabFact]:
    return [f for f in out.facts if isinstance(f, LabFact)]


def test_a_long_history_validates_only_the_newest(knowledge: Knowledge) -> None:
    history = [
        ferritin(f"f{n}", 20 + n % 50, (dt.date(2020, 1, 1) + dt.timedelta(days=n)).isoformat())
        for n in range(600)
    ]
    out = extract(knowledge, *reversed(history))
    [fact] = labs(out)
    assert fact.source == "Observation/f599"
    assert out.validated == 1
    assert out.skipped == 599
    assert out.issues == []


def test_an_invalid_newest_result_falls_back_to_the_next(knowledge: Knowledge) -> None:
    broken = ferritin("new", 30, "2026-11-01", issued="not a date")
    out = extract(knowledge, broken, ferritin("old", 90, "2026-10-01"))
    [fact] = labs(out)
    assert fact.source == "Observation/old"
    assert out.validated == 2
    [issue] = out.issues
    assert issue.where == "prefetch Observation #0"
    assert "issued" in issue.message


def test_labs_read_only_when_the_key_answered(knowledge: Knowledge) -> None:
    assert any(isinstance(f, LabsReadFact) for f in extract(knowledge).facts)
    assert not any(isinstance(f, LabsReadFact) for f in extract(knowledge, labs_key=False).facts)


def test_unusable_labs_are_issues_that_do_not_carry_their_values(knowledge: Knowledge) -> None:
    odd_unit = ferritin("u", 31.7, "2026-11-01")
    odd_unit["valueQuantity"] = {"value": 31.7, "unit": "furlongs"}
    out = extract(
        knowledge,
        odd_unit,
        ferritin("n", "31.7", "2026-11-01"),
        ferritin("f", 31.7, "2031-01-01"),
        ferritin("c", 31.7, "2026-11-01", valueCodeableConcept={"coding": 5}),
    )
    assert labs(out) == []
    messages = [issue.message for issue in out.issues]
    assert messages[:3] == [
        "unit not known for this test, value not used",
        "valueQuantity.value is not a finite number",
        "dated in the future, not used",
    ]
    assert len(messages) == 4
    assert not any("31.7" in m or "furlongs" in m for m in messages)


def test_labs_outside_the_value_set_or_not_final_are_skipped_quietly(
    knowledge: Knowledge,
) -> None:
    glucose = ferritin("g", 5.1, "2026-11-01")
    glucose["code"]["coding"][0]["code"] = "2345-7"
    preliminary = ferritin("p", 30, "2026-11-01", status="preliminary")
    out = extract(knowledge, glucose, preliminary)
    assert labs(out) == []
    assert out.issues == []
    assert out.skipped == 2


def test_labs_sent_as_null_mean_none_on_record(knowledge: Knowledge) -> None:
    prefetch = {"medications": None, "conditions": None, "observations": None}
    record = collect_record(None, prefetch, REQUIRED, patient_id="p1")
    out = extract_facts(record, knowledge, TODAY)
    assert [f for f in out.facts if isinstance(f, LabsReadFact)] == [LabsReadFact()]
    assert labs(out) == []
