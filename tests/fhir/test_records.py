"""collect_record: the hook request's draft orders and prefetch -> one patient's raw resources."""

from __future__ import annotations

from typing import Any

import pytest

from cds.errors import PrefetchUnavailableError
from cds.fhir import InputIssue, PatientRecord, collect_record, resources_in
from cds.fhir.records import local_reference, names_patient
from tests.conftest import load_example
from tests.facts.fhir_builders import condition, medication_request

REQUIRED = ["medications", "conditions"]


def bundle(*resources: Any, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources], **extra}


def outcome() -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }


def test_restless_back_example() -> None:
    example = load_example("restless-back-amisulpride.json")
    record = collect_record(
        example["context"]["draftOrders"],
        example["prefetch"],
        REQUIRED,
        patient_id=example["context"]["patientId"],
    )
    assert [r["id"] for r in record.draft_orders] == ["draft-amisulpride-800"]
    assert [r["id"] for r in record.medication_requests] == ["amisulpride-600"]
    assert [r["id"] for r in record.conditions] == ["back-itching"]
    assert record.medications == {}
    assert record.issues == []


def test_bundle_without_type_is_read() -> None:
    """draftOrders from some clients is a Bundle with no ``type``."""
    drafts = bundle(medication_request(id="d1", status="draft", text="sertraline"))
    assert "type" not in drafts
    record = collect_record(
        drafts, {"medications": None, "conditions": None}, REQUIRED, patient_id="p1"
    )
    assert [r["id"] for r in record.draft_orders] == ["d1"]
    assert record.issues == []


def test_searchset_and_single_resources() -> None:
    prefetch = {
        "medications": bundle(medication_request(id="m1", text="sertraline"), type="searchset"),
        "conditions": condition(id="c1", text="back itching"),  # a single resource
    }
    record = collect_record(None, prefetch, REQUIRED, patient_id="p1")
    assert [r["id"] for r in record.medication_requests] == ["m1"]
    assert [r["id"] for r in record.conditions] == ["c1"]
    assert record.draft_orders == []


def test_null_prefetch_value_means_no_data() -> None:
    record = collect_record(
        None, {"medications": None, "conditions": None}, REQUIRED, patient_id="p1"
    )
    assert record == PatientRecord()


def test_empty_bundle_means_no_data() -> None:
    record = collect_record(
        None, {"medications": bundle(), "conditions": bundle()}, REQUIRED, patient_id="p1"
    )
    assert record == PatientRecord()


@pytest.mark.parametrize(
    ("prefetch", "missing"),
    [
        pytest.param({"conditions": None}, ["medications"], id="absent-key"),
        pytest.param({"medications": outcome(), "conditions": None}, ["medications"], id="outcome"),
        pytest.param({}, ["medications", "conditions"], id="empty-prefetch"),
        pytest.param(None, ["medications", "conditions"], id="no-prefetch"),
        pytest.param(
            {"medications": outcome(), "patient": {"resourceType": "Patient"}},
            ["medications", "conditions"],
            id="outcome-and-absent",
        ),
    ],
)
def test_unavailable_required_data(prefetch: dict[str, Any] | None, missing: list[str]) -> None:
    with pytest.raises(PrefetchUnavailableError) as raised:
        collect_record(None, prefetch, REQUIRED, patient_id="p1")
    assert raised.value.missing == missing
    for key in missing:
        assert key in str(raised.value)


def test_operation_outcome_for_an_optional_key_is_ignored() -> None:
    prefetch = {"medications": None, "conditions": None, "patient": outcome()}
    assert collect_record(None, prefetch, REQUIRED, patient_id="p1") == PatientRecord()


def test_nothing_required() -> None:
    assert collect_record(None, None, [], patient_id="p1") == PatientRecord()


def test_entries_without_resource_are_reported() -> None:
    conditions = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "urn:uuid:1"},
            {"resource": condition(id="c1", text="back itching")},
            {"resource": {"id": "no-type"}},
            "not an entry",
            {"resource": None},
        ],
    }
    record = collect_record(
        None, {"medications": None, "conditions": conditions}, REQUIRED, patient_id="p1"
    )
    assert [r["id"] for r in record.conditions] == ["c1"]
    assert record.issues == [
        InputIssue("prefetch.conditions.entry[0]", "entry without a resource"),
        InputIssue("prefetch.conditions.entry[2]", "entry without a resource"),
        InputIssue("prefetch.conditions.entry[3]", "entry without a resource"),
        InputIssue("prefetch.conditions.entry[4]", "entry without a resource"),
    ]


def test_issues_never_echo_the_data() -> None:
    secret = {"resourceType": "Bundle", "entry": [{"request": {"url": "Patient/secret-123"}}]}
    record = collect_record(
        secret, {"medications": None, "conditions": None}, REQUIRED, patient_id="p1"
    )
    assert "secret" not in repr(record.issues)
    assert record.issues[0].where == "context.draftOrders.entry[0]"


@pytest.mark.parametrize(
    ("value", "issue"),
    [
        ([{"resourceType": "Condition"}], InputIssue("x", "expected a FHIR resource or Bundle")),
        ("Bundle", InputIssue("x", "expected a FHIR resource or Bundle")),
        ({"resourceType": "Bundle", "entry": "oops"}, InputIssue("x.entry", "expected a list")),
        ({"resourceType": "Bundle", "entry": {"a": 1}}, InputIssue("x.entry", "expected a list")),
    ],
)
def test_resources_in_malformed_values(value: Any, issue: InputIssue) -> None:
    issues: list[InputIssue] = []
    assert resources_in(value, "x", issues) == []
    assert issues == [issue]


def test_resources_in_bundle_with_null_entry() -> None:
    issues: list[InputIssue] = []
    assert resources_in({"resourceType": "Bundle", "entry": None}, "x", issues) == []
    assert issues == []


def test_prefetch_value_that_is_not_a_resource_is_reported_not_raised() -> None:
    """Regression: a prefetch value that is a JSON object without ``resourceType`` passes
    ``resources_in`` as a single resource and ``_file`` raises KeyError('resourceType'),
    so one malformed prefetch value turns the whole call into an HTTP 500."""
    prefetch = {"medications": {"total": 0}, "conditions": None}
    record = collect_record(None, prefetch, REQUIRED, patient_id="p1")
    assert record.medication_requests == []
    assert [i.where for i in record.issues] == ["prefetch.medications"]


def test_medications_are_indexed_for_references() -> None:
    med = {"resourceType": "Medication", "id": "m-ser", "code": {"text": "sertraline"}}
    contained_only = {"resourceType": "Medication", "code": {"text": "no id"}}
    prefetch = {
        "medications": bundle(med, contained_only, medication_request(id="mr")),
        "conditions": None,
    }
    record = collect_record(None, prefetch, REQUIRED, patient_id="p1")
    assert record.medications == {"Medication/m-ser": med}
    assert record.medication("Medication/m-ser") is med
    assert record.medication("Medication/other") is None
    assert record.medication("#m-ser") is None  # contained references are the order's own


def test_medication_in_draft_orders_is_indexed_too() -> None:
    med = {"resourceType": "Medication", "id": "m-q", "code": {"text": "quetiapine"}}
    drafts = bundle(med, medication_request(id="d1", status="draft"))
    record = collect_record(
        drafts, {"medications": None, "conditions": None}, REQUIRED, patient_id="p1"
    )
    assert record.medication("Medication/m-q") is med
    assert [r["id"] for r in record.draft_orders] == ["d1"]


def test_other_resource_types_are_ignored() -> None:
    prefetch = {
        "patient": {"resourceType": "Patient", "id": "p1"},
        "medications": bundle({"resourceType": "MedicationStatement", "id": "ms"}),
        "conditions": bundle({"resourceType": "Procedure", "id": "o"}),  # Observation is read
    }
    assert collect_record(None, prefetch, REQUIRED, patient_id="p1") == PatientRecord()


def test_observations_of_this_patient_are_kept_and_others_skipped() -> None:
    mine = {"resourceType": "Observation", "id": "f1", "subject": {"reference": "Patient/p1"}}
    theirs = {"resourceType": "Observation", "id": "f2", "subject": {"reference": "Patient/p2"}}
    unowned = {"resourceType": "Observation", "id": "f3"}
    prefetch = {
        "medications": None,
        "conditions": None,
        "observations": bundle(mine, theirs, unowned),
    }
    record = collect_record(None, prefetch, REQUIRED, patient_id="p1")
    assert record.observations == [mine]
    assert record.skipped == {"other-patient": 1, "no-subject": 1}
    assert record.answered == {"medications", "conditions", "observations"}


def test_an_observation_in_draft_orders_is_not_read_as_a_lab() -> None:
    lab = {"resourceType": "Observation", "id": "f1", "subject": {"reference": "Patient/p1"}}
    record = collect_record(
        lab, {"medications": None, "conditions": None}, REQUIRED, patient_id="p1"
    )
    assert record.observations == []


def test_an_operation_outcome_key_was_not_answered() -> None:
    error = {"resourceType": "OperationOutcome", "issue": []}
    prefetch = {"medications": None, "conditions": None, "observations": error}
    record = collect_record(None, prefetch, REQUIRED, patient_id="p1")
    assert "observations" not in record.answered


def test_draft_order_as_single_resource() -> None:
    draft = medication_request(id="d1", status="draft")
    record = collect_record(
        draft, {"medications": None, "conditions": None}, REQUIRED, patient_id="p1"
    )
    assert record.draft_orders == [draft]
    assert record.medication_requests == []


@pytest.mark.parametrize(
    ("reference", "local"),
    [
        ("Patient/1", "Patient/1"),
        ("https://ehr.example/fhir/Patient/1", "Patient/1"),
        ("Patient/1/", "Patient/1"),
        ("Patient/1/_history/4", "Patient/1"),
        ("http://x/fhir/Medication/m-2/_history/1/", "Medication/m-2"),
        ("1", None),
        ("Patient/", None),
        ("", None),
    ],
)
def test_local_reference(reference: str, local: str | None) -> None:
    assert local_reference(reference) == local


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ({"reference": "Patient/p1"}, True),
        ({"reference": " https://ehr/fhir/Patient/p1/_history/2 "}, True),
        ({"reference": "Patient/p10"}, False),
        ({"reference": "Patient/P1"}, False),  # FHIR ids are case-sensitive
        ({"reference": "Group/p1"}, False),
        ({"identifier": {"value": "p1"}}, False),  # cannot be checked: not this patient
        ({"display": "p1"}, False),
        ({"reference": 7}, False),
        ("Patient/p1", False),
        (None, False),
    ],
)
def test_names_patient(subject: Any, expected: bool) -> None:
    assert names_patient(subject, "p1") is expected


def test_other_patients_and_subjectless_chart_resources_are_counted_not_filed() -> None:
    mine = medication_request(id="mine", text="sertraline")
    theirs = medication_request(id="theirs", text="sertraline", subject={"reference": "Patient/p2"})
    bare = condition(id="bare", text="back itching")
    del bare["subject"]
    prefetch = {"medications": bundle(mine, theirs), "conditions": bundle(bare)}
    record = collect_record(None, prefetch, REQUIRED, patient_id="p1")
    assert [r["id"] for r in record.medication_requests] == ["mine"]
    assert record.conditions == []
    assert record.skipped == {"other-patient": 1, "no-subject": 1}
    assert [i.where for i in record.issues] == [
        "prefetch.medications.entry[1]",
        "prefetch.conditions.entry[0]",
    ]
    assert "p2" not in repr(record.issues)


def test_a_subjectless_draft_is_the_hook_patients_and_gets_the_subject() -> None:
    draft = medication_request(id="d1", status="draft", text="sertraline")
    del draft["subject"]
    record = collect_record(
        bundle(draft), {"medications": None, "conditions": None}, REQUIRED, patient_id="p1"
    )
    assert [r["subject"] for r in record.draft_orders] == [{"reference": "Patient/p1"}]
    assert record.skipped == {}


def test_included_medication_resolves_by_any_spelling_of_its_reference() -> None:
    medication = {"resourceType": "Medication", "id": "m1", "code": {"text": "sertraline"}}
    record = collect_record(
        None,
        {"medications": bundle(medication), "conditions": None},
        REQUIRED,
        patient_id="p1",
    )
    assert record.medication("https://ehr/fhir/Medication/m1/_history/3") == medication
    assert record.medication("Medication/m2") is None


def _languages(prefetch: dict[str, Any], language: str | None = None) -> list[Any]:
    record = collect_record(None, prefetch, [], patient_id="p1", language=language)
    return [c.get("language") for c in record.conditions]


def test_a_condition_without_language_takes_its_bundles() -> None:
    """Issue 10: the request's language (its Bundle's, then Content-Language) is the
    default for a Condition that states none; the Condition's own always wins."""
    own = condition(id="own", language="zh")
    plain = condition(id="plain")
    prefetch = {"conditions": bundle(own, plain, language="es-MX")}
    assert _languages(prefetch, language="en") == ["zh", "es-MX"]
    assert "language" not in plain  # the request's data is never changed


@pytest.mark.parametrize("bundle_language", [None, "", "12", 7, "es_MX"])
def test_without_a_usable_bundle_language_the_request_language_is_used(
    bundle_language: Any,
) -> None:
    prefetch = {"conditions": bundle(condition(), language=bundle_language)}
    assert _languages(prefetch, language="es") == ["es"]
    assert _languages(prefetch) == [None]  # then the phrase files detect it


def test_a_single_condition_and_other_resources_keep_what_they_state() -> None:
    order = medication_request()
    prefetch = {"conditions": condition(language=None), "medications": bundle(order)}
    record = collect_record(None, prefetch, [], patient_id="p1", language="es")
    assert [c.get("language", "absent") for c in record.conditions] == [None]
    assert record.medication_requests == [order]
    assert _languages({"conditions": condition()}, language="es") == ["es"]
