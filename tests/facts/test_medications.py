"""MedicationRequest -> medication facts: which drug, how much, since when, draft or not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.facts import MedicationFact, Terminology, epoch_day
from cds.facts.medications import (
    COUNTED_STATUSES,
    CURRENT_STATUSES,
    PAST_STATUSES,
    MedicationLookup,
    candidate_drugs,
    medication_facts,
)
from tests.conftest import load_example
from tests.facts.fhir_builders import ATC, RXNORM, dose, medication_request

TODAY = dt.date(2026, 11, 20)


def lookup_in(*medications: dict[str, Any]) -> MedicationLookup:
    """Resolve references the way the request does: ``#id`` contained, else ``Medication/id``."""
    table: dict[str, Mapping[str, Any]] = {}
    for medication in medications:
        table[f"#{medication['id']}"] = medication
        table[f"Medication/{medication['id']}"] = medication
    return table.get


NO_MEDICATIONS = lookup_in()


def medication(
    id: str, codes: list[tuple[str, str]] | None = None, text: str | None = None
) -> dict[str, Any]:
    code: dict[str, Any] = {}
    if codes:
        code["coding"] = [{"system": s, "code": c} for s, c in codes]
    if text:
        code["text"] = text
    return {"resourceType": "Medication", "id": id, "code": code}


def facts(
    raw: dict[str, Any],
    terminology: Terminology,
    lookup: MedicationLookup = NO_MEDICATIONS,
    *,
    draft: bool = False,
) -> list[MedicationFact]:
    """Facts the way extraction makes them: triage on raw JSON, then the validated model."""
    matches = candidate_drugs(raw, terminology, lookup, draft=draft)
    if not matches:
        return []
    order = MedicationRequest.model_validate(raw)
    return list(medication_facts(order, raw, matches, lookup, draft=draft, today=TODAY))


# --- candidate_drugs: a counted status and a drug our value sets know ----------------------


@pytest.mark.parametrize("status", ["active", "on-hold", "stopped", "completed"])
def test_counted_statuses_are_candidates(terminology: Terminology, status: str) -> None:
    """Current chart orders (active, on-hold) and past ones (stopped, completed): the
    rules decide whether a past order ended too long ago to matter."""
    raw = medication_request(status=status, codes=[(RXNORM, "46303")])
    found = candidate_drugs(raw, terminology, NO_MEDICATIONS)
    assert [(m.drug.ingredient, m.recognised_by) for m in found] == [
        ("amisulpride", "rxnorm-ingredient")
    ]


def test_counted_statuses_are_current_or_past() -> None:
    assert {"active", "draft", "on-hold"} == CURRENT_STATUSES
    assert {"stopped", "completed"} == PAST_STATUSES
    assert COUNTED_STATUSES == CURRENT_STATUSES | PAST_STATUSES


@pytest.mark.parametrize(
    "status", ["entered-in-error", "cancelled", "unknown", "suspended", "", None]
)
def test_other_statuses_are_not_candidates(terminology: Terminology, status: str | None) -> None:
    raw = medication_request(codes=[(RXNORM, "46303")])
    raw["status"] = status
    assert candidate_drugs(raw, terminology, NO_MEDICATIONS) == []


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(medication_request(text="atorvastatin 20 mg"), id="unknown-drug"),
        pytest.param(medication_request(codes=[(RXNORM, "83367")]), id="unknown-code"),
        pytest.param(medication_request(), id="no-medication"),
        pytest.param(
            medication_request(medicationCodeableConcept="sertraline"), id="not-a-concept"
        ),
        pytest.param(
            medication_request(medicationReference={"reference": "Medication/nowhere"}),
            id="unresolved-reference",
        ),
        pytest.param(
            medication_request(medicationReference={"display": "sertraline"}),
            id="reference-without-reference",
        ),
    ],
)
def test_not_candidates(terminology: Terminology, raw: dict[str, Any]) -> None:
    assert candidate_drugs(raw, terminology, NO_MEDICATIONS) == []


def test_reference_to_contained_medication(terminology: Terminology) -> None:
    contained = medication("med1", codes=[(RXNORM, "312743")])  # quetiapine 100 MG tablet
    raw = medication_request(
        contained=[contained], medicationReference={"reference": "#med1"}, dosages=[dose(100)]
    )
    lookup = lookup_in(contained)
    assert candidate_drugs(raw, terminology, lookup)
    (fact,) = facts(raw, terminology, lookup)
    assert (fact.ingredient, fact.recognised_by, fact.mg_per_day) == (
        "quetiapine",
        "rxnorm-product",
        100.0,
    )


def test_reference_to_medication_elsewhere_in_the_request(terminology: Terminology) -> None:
    elsewhere = medication("m-ser", codes=[(ATC, "N06AB06")], text="sertraline 50 mg tablet")
    raw = medication_request(medicationReference={"reference": "Medication/m-ser"})
    lookup = lookup_in(elsewhere)
    assert candidate_drugs(raw, terminology, lookup)
    (fact,) = facts(raw, terminology, lookup)
    assert (fact.ingredient, fact.recognised_by, fact.display) == (
        "sertraline",
        "atc",
        "sertraline 50 mg tablet",
    )


def test_unresolved_reference_falls_back_to_its_display(terminology: Terminology) -> None:
    raw = medication_request(
        medicationReference={"reference": "Medication/elsewhere", "display": "Sertraline 50 mg"}
    )
    assert candidate_drugs(raw, terminology, NO_MEDICATIONS)
    (fact,) = facts(raw, terminology)
    assert (fact.ingredient, fact.recognised_by) == ("sertraline", "text")


# --- medication_facts ---------------------------------------------------------------------


def test_restless_back_active_order(terminology: Terminology) -> None:
    active = load_example("restless-back-amisulpride.json")["prefetch"]["medications"]["entry"][0][
        "resource"
    ]
    assert facts(active, terminology) == [
        MedicationFact(
            ingredient="amisulpride",
            drug_class="antipsychotic",
            subclass="atypical (benzamide)",
            provoking=True,
            status="active",
            draft=False,
            current=True,
            recognised_by="rxnorm-ingredient",
            display="amisulpride 200 mg tablet",
            source="MedicationRequest/amisulpride-600",
            mg_per_day=600.0,
            start_day=epoch_day(dt.date(2026, 10, 22)),
            end_day=None,
            unit_strength_mg=200.0,
            role="provoking",
        )
    ]


def test_restless_back_draft_order_starts_today(terminology: Terminology) -> None:
    draft = load_example("restless-back-amisulpride.json")["context"]["draftOrders"]["entry"][0][
        "resource"
    ]
    (fact,) = facts(draft, terminology, draft=True)
    assert fact.draft
    assert fact.status == "draft"
    assert fact.mg_per_day == 800.0
    assert fact.start_day == epoch_day(TODAY)
    assert fact.source == "MedicationRequest/draft-amisulpride-800"


def test_draft_with_authored_on_keeps_it(terminology: Terminology) -> None:
    raw = medication_request(status="draft", codes=[(RXNORM, "46303")], authoredOn="2026-11-18")
    (fact,) = facts(raw, terminology, draft=True)
    assert fact.start_day == epoch_day(dt.date(2026, 11, 18))


def test_active_without_authored_on_has_no_start(terminology: Terminology) -> None:
    (fact,) = facts(medication_request(codes=[(RXNORM, "46303")]), terminology)
    assert fact.start_day is None
    assert not fact.draft


def test_start_falls_back_to_dispense_validity(terminology: Terminology) -> None:
    raw = medication_request(
        codes=[(RXNORM, "46303")],
        dispenseRequest={"validityPeriod": {"start": "2026-09-01", "end": "2027-03-01"}},
    )
    (fact,) = facts(raw, terminology)
    assert fact.start_day == epoch_day(dt.date(2026, 9, 1))


def test_authored_on_datetime(terminology: Terminology) -> None:
    raw = medication_request(codes=[(RXNORM, "46303")], authoredOn="2026-10-22T09:15:00+02:00")
    (fact,) = facts(raw, terminology)
    assert fact.start_day == epoch_day(dt.date(2026, 10, 22))


def test_prefetched_draft_status_is_not_the_order_being_placed(terminology: Terminology) -> None:
    """Regression: an unsigned draft sitting in the chart got "about to be ordered" cards
    and suggestions; only ``context.draftOrders`` is the order being placed."""
    assert facts(medication_request(status="draft", codes=[(RXNORM, "46303")]), terminology) == []


@pytest.mark.parametrize("status", ["draft", "active", "on-hold"])
def test_the_hooks_draft_orders_are_drafts_whatever_their_status(
    terminology: Terminology, status: str
) -> None:
    raw = medication_request(status=status, codes=[(RXNORM, "46303")])
    (fact,) = facts(raw, terminology, draft=True)
    assert (fact.draft, fact.current, fact.planned) == (True, True, False)


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "stopped", "unknown"])
def test_a_cancelled_or_erroneous_draft_order_is_nothing(
    terminology: Terminology, status: str
) -> None:
    raw = medication_request(status=status, codes=[(RXNORM, "46303")])
    assert facts(raw, terminology, draft=True) == []


def test_on_hold_order_is_a_fact(terminology: Terminology) -> None:
    (fact,) = facts(medication_request(status="on-hold", codes=[(RXNORM, "46303")]), terminology)
    assert (fact.status, fact.draft) == ("on-hold", False)


def test_drug_named_only_by_text(terminology: Terminology) -> None:
    raw = medication_request(text="Sertraline hydrochloride 50 mg", dosages=[dose(50)])
    (fact,) = facts(raw, terminology)
    assert fact.ingredient == "sertraline"
    assert fact.drug_class == "antidepressant"
    assert fact.provoking
    assert fact.recognised_by == "text"
    assert fact.display == "Sertraline hydrochloride 50 mg"
    assert fact.mg_per_day == 50.0


def test_codes_win_over_text(terminology: Terminology) -> None:
    raw = medication_request(codes=[(RXNORM, "46303")], text="sertraline (mis-typed)")
    assert [f.ingredient for f in facts(raw, terminology)] == ["amisulpride"]


def test_display_falls_back_to_coding_display_then_ingredient(terminology: Terminology) -> None:
    concept = {"coding": [{"system": RXNORM, "code": "46303", "display": "Amisulpride"}]}
    (fact,) = facts(medication_request(concept=concept), terminology)
    assert fact.display == "Amisulpride"
    (fact,) = facts(medication_request(codes=[(RXNORM, "46303")]), terminology)
    assert fact.display == "amisulpride"


def test_non_provoking_drug_is_a_fact_with_provoking_false(terminology: Terminology) -> None:
    (fact,) = facts(medication_request(codes=[(RXNORM, "6375")]), terminology)
    assert (fact.ingredient, fact.provoking) == ("levodopa", False)


def test_combination_product_gives_two_facts_without_dose(terminology: Terminology) -> None:
    # 403969: fluoxetine 25 MG / olanzapine 6 MG Oral Capsule; a mg dose cannot be split
    raw = medication_request(id="combo", codes=[(RXNORM, "403969")], dosages=[dose(31)])
    found = facts(raw, terminology)
    assert [(f.ingredient, f.drug_class) for f in found] == [
        ("fluoxetine", "antidepressant"),
        ("olanzapine", "antipsychotic"),
    ]
    assert all(f.mg_per_day is None for f in found)
    assert {f.source for f in found} == {"MedicationRequest/combo"}


def test_combination_by_text_gives_two_facts_without_dose(terminology: Terminology) -> None:
    raw = medication_request(text="levodopa/carbidopa 100/25 mg", dosages=[dose(125)])
    found = facts(raw, terminology)
    assert sorted(f.ingredient for f in found) == ["carbidopa", "levodopa"]
    assert all(f.mg_per_day is None for f in found)


def test_unknown_dose_is_none(terminology: Terminology) -> None:
    raw = medication_request(codes=[(RXNORM, "46303")], dosages=[dose(2, "tablet")])
    (fact,) = facts(raw, terminology)
    assert fact.mg_per_day is None


def test_order_without_id_names_its_type(terminology: Terminology) -> None:
    (fact,) = facts(medication_request(id=None, codes=[(RXNORM, "46303")]), terminology)
    assert fact.source == "MedicationRequest"


def test_unrecognised_order_gives_no_facts(terminology: Terminology) -> None:
    assert facts(medication_request(text="atorvastatin 20 mg"), terminology) == []


# --- doses in tablets: the strength from the product name ----------------------------------

QUETIAPINE_25 = (RXNORM, "312744")  # drug_products.tsv: quetiapine 25 MG Oral Tablet


def product_concept(display: str | None = "quetiapine 25 MG Oral Tablet") -> dict[str, Any]:
    coding: dict[str, Any] = {"system": QUETIAPINE_25[0], "code": QUETIAPINE_25[1]}
    if display is not None:
        coding["display"] = display
    return {"coding": [coding]}


def test_product_code_dosed_in_tablets(terminology: Terminology) -> None:
    raw = medication_request(
        id="q", concept=product_concept(), dosages=[dose(2, "tablet", per=None, code="BID")]
    )
    assert facts(raw, terminology) == [
        MedicationFact(
            ingredient="quetiapine",
            drug_class="antipsychotic",
            subclass="atypical",
            provoking=True,
            status="active",
            draft=False,
            current=True,
            recognised_by="rxnorm-product",
            display="quetiapine 25 MG Oral Tablet",
            source="MedicationRequest/q",
            mg_per_day=100.0,
            start_day=None,
            end_day=None,
            unit_strength_mg=25.0,
            role="provoking",
        )
    ]


def test_strength_from_the_order_text(terminology: Terminology) -> None:
    raw = medication_request(
        text="Quetiapine 50 mg tablets", dosages=[dose(1, "{tablet}", per=None, code="TID")]
    )
    (fact,) = facts(raw, terminology)
    assert (fact.ingredient, fact.mg_per_day) == ("quetiapine", 150.0)


def test_strength_from_a_contained_medication(terminology: Terminology) -> None:
    contained = medication("med1", codes=[QUETIAPINE_25], text="quetiapine 25 MG Oral Tablet")
    raw = medication_request(
        contained=[contained],
        medicationReference={"reference": "#med1"},
        dosages=[dose(3, "tablet", per=(1, 1, "d"))],
    )
    (fact,) = facts(raw, terminology, lookup_in(contained))
    assert fact.mg_per_day == 75.0


@pytest.mark.parametrize(
    "concept",
    [
        pytest.param(product_concept(display=None), id="code-without-display"),
        pytest.param(product_concept(display="quetiapine oral tablet"), id="display-no-strength"),
        pytest.param(
            {"coding": [{"system": RXNORM, "code": "51272"}], "text": "quetiapine 25 mg or 50 mg"},
            id="two-strengths-in-text",
        ),
    ],
)
def test_tablets_without_a_single_stated_strength_are_unknown(
    terminology: Terminology, concept: dict[str, Any]
) -> None:
    """The strength comes from the names in the request, never guessed."""
    raw = medication_request(concept=concept, dosages=[dose(2, "tablet", per=None, code="BID")])
    (fact,) = facts(raw, terminology)
    assert fact.ingredient == "quetiapine"
    assert fact.mg_per_day is None


def test_combination_product_in_capsules_has_no_dose(terminology: Terminology) -> None:
    concept = {
        "coding": [
            {
                "system": RXNORM,
                "code": "403969",
                "display": "fluoxetine 25 MG / olanzapine 6 MG Oral Capsule",
            }
        ]
    }
    raw = medication_request(concept=concept, dosages=[dose(1, "capsule")])
    found = facts(raw, terminology)
    assert [(f.ingredient, f.mg_per_day) for f in found] == [
        ("fluoxetine", None),
        ("olanzapine", None),
    ]


# --- current and past orders, and when a past order ended --------------------------------


@pytest.mark.parametrize(
    ("status", "current"),
    [
        ("active", True),
        ("on-hold", True),
        ("stopped", False),
        ("completed", False),
    ],
)
def test_current_or_past_follows_the_status(
    terminology: Terminology, status: str, current: bool
) -> None:
    (fact,) = facts(medication_request(status=status, codes=[(RXNORM, "46303")]), terminology)
    assert (fact.status, fact.current, fact.draft) == (status, current, False)


def test_stopped_order_with_its_dates(terminology: Terminology) -> None:
    raw = medication_request(
        id="old",
        status="stopped",
        codes=[(RXNORM, "46303")],
        authoredOn="2026-06-01",
        dispenseRequest={"validityPeriod": {"start": "2026-06-01", "end": "2026-08-15"}},
        dosages=[dose(200, per=(2, 1, "d"))],
    )
    assert facts(raw, terminology) == [
        MedicationFact(
            ingredient="amisulpride",
            drug_class="antipsychotic",
            subclass="atypical (benzamide)",
            provoking=True,
            status="stopped",
            draft=False,
            current=False,
            recognised_by="rxnorm-ingredient",
            display="amisulpride",
            source="MedicationRequest/old",
            mg_per_day=400.0,
            start_day=epoch_day(dt.date(2026, 6, 1)),
            end_day=epoch_day(dt.date(2026, 8, 15)),
            role="provoking",
        )
    ]


def bounded(end: str | None, start: str = "2026-06-01") -> dict[str, Any]:
    instruction = dose(100, per=(1, 1, "d"))
    period = {"start": start} if end is None else {"start": start, "end": end}
    instruction["timing"]["repeat"]["boundsPeriod"] = period
    return instruction


@pytest.mark.parametrize(
    ("extra", "end"),
    [
        pytest.param(
            {"dispenseRequest": {"validityPeriod": {"end": "2026-08-15"}}},
            dt.date(2026, 8, 15),
            id="validity-end",
        ),
        pytest.param(
            {"dosageInstruction": [bounded("2026-07-31")]}, dt.date(2026, 7, 31), id="bounds-end"
        ),
        pytest.param(
            {
                "dispenseRequest": {"validityPeriod": {"end": "2026-08-15"}},
                "dosageInstruction": [bounded("2026-07-31")],
            },
            dt.date(2026, 7, 31),  # when dosing ended, not when dispensing could have
            id="bounds-end-wins",
        ),
        pytest.param(
            {
                "dispenseRequest": {"validityPeriod": {"start": "2026-06-01"}},
                "dosageInstruction": [bounded("2026-07-31")],
            },
            dt.date(2026, 7, 31),
            id="validity-without-end-then-bounds",
        ),
        pytest.param(
            {"dosageInstruction": [bounded(None), bounded("2026-07-20")]},
            dt.date(2026, 7, 20),
            id="first-instruction-with-an-end",
        ),
        pytest.param(
            {"dispenseRequest": {"validityPeriod": {"end": "2026-08-15T17:30:00+02:00"}}},
            dt.date(2026, 8, 15),
            id="end-datetime",
        ),
    ],
)
def test_end_day_sources(terminology: Terminology, extra: dict[str, Any], end: dt.date) -> None:
    raw = medication_request(status="completed", codes=[(RXNORM, "46303")], **extra)
    (fact,) = facts(raw, terminology)
    assert fact.end_day == epoch_day(end)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="no-dates"),
        pytest.param({"authoredOn": "2026-06-01"}, id="authored-only"),
        pytest.param(
            {"dispenseRequest": {"validityPeriod": {"start": "2026-06-01"}}}, id="validity-start"
        ),
        pytest.param({"dosageInstruction": [bounded(None)]}, id="bounds-without-end"),
        pytest.param({"dosageInstruction": [dose(100, per=None, code="BID")]}, id="timing-code"),
    ],
)
def test_no_end_day_without_an_end_date(terminology: Terminology, extra: dict[str, Any]) -> None:
    raw = medication_request(status="stopped", codes=[(RXNORM, "46303")], **extra)
    (fact,) = facts(raw, terminology)
    assert (fact.current, fact.end_day) == (False, None)


# --- when the patient takes it from: boundsPeriod, validityPeriod, authoredOn ----------------


def _start_and_state(terminology: Terminology, **extra: Any) -> tuple[Any, ...]:
    (fact,) = facts(medication_request(codes=[(RXNORM, "46303")], **extra), terminology)
    return fact.start_day, fact.current, fact.planned, fact.end_day


def _day(text: str) -> int | None:
    return epoch_day(dt.date.fromisoformat(text))


def test_bounds_start_is_preferred_to_validity_and_authored_on(terminology: Terminology) -> None:
    state = _start_and_state(
        terminology,
        authoredOn="2026-11-01",
        dispenseRequest={"validityPeriod": {"start": "2026-11-03"}},
        dosageInstruction=[bounded(None, start="2026-11-05")],
    )
    assert state == (_day("2026-11-05"), True, False, None)


def test_earliest_bounds_start_of_several_instructions(terminology: Terminology) -> None:
    state = _start_and_state(
        terminology,
        authoredOn="2026-11-20",
        dosageInstruction=[bounded(None, start="2026-11-10"), bounded(None, start="2026-09-01")],
    )
    assert state[0] == _day("2026-09-01")  # recorded as taken since before it was authored


def test_validity_start_is_preferred_to_authored_on(terminology: Terminology) -> None:
    state = _start_and_state(
        terminology,
        authoredOn="2026-10-01",
        dispenseRequest={"validityPeriod": {"start": "2026-10-04"}},
    )
    assert state[0] == _day("2026-10-04")


def test_authored_on_is_the_last_resort(terminology: Terminology) -> None:
    assert _start_and_state(terminology, authoredOn="2026-10-01")[0] == _day("2026-10-01")


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"dosageInstruction": [bounded(None, start="2026-12-01")]}, id="bounds"),
        pytest.param(
            {"dispenseRequest": {"validityPeriod": {"start": "2026-12-01"}}}, id="validity"
        ),
        pytest.param({"authoredOn": "2026-12-01"}, id="authored"),
    ],
)
def test_a_chart_order_starting_after_today_is_planned_not_current(
    terminology: Terminology, extra: dict[str, Any]
) -> None:
    assert _start_and_state(terminology, **extra) == (_day("2026-12-01"), False, True, None)


def test_authored_today_but_dosing_from_next_week_is_planned(terminology: Terminology) -> None:
    state = _start_and_state(
        terminology,
        authoredOn=TODAY.isoformat(),
        dosageInstruction=[bounded(None, start=(TODAY + dt.timedelta(days=7)).isoformat())],
    )
    assert state[1:3] == (False, True)


def test_a_draft_starting_later_is_still_the_order_being_placed(terminology: Terminology) -> None:
    raw = medication_request(
        status="draft", codes=[(RXNORM, "46303")], dosageInstruction=[bounded(None, "2026-12-24")]
    )
    (fact,) = facts(raw, terminology, draft=True)
    assert (fact.draft, fact.current, fact.planned, fact.start_day) == (
        True,
        True,
        False,
        _day("2026-12-24"),
    )


def test_an_active_order_whose_dosing_ended_is_past(terminology: Terminology) -> None:
    state = _start_and_state(terminology, dosageInstruction=[bounded("2026-10-31")])
    assert state == (_day("2026-06-01"), False, False, _day("2026-10-31"))


def test_an_active_order_with_one_open_instruction_is_still_current(
    terminology: Terminology,
) -> None:
    state = _start_and_state(
        terminology, dosageInstruction=[bounded("2026-07-01"), bounded(None, start="2026-07-02")]
    )
    assert state[1:] == (True, False, None)


def test_an_expired_dispense_validity_does_not_end_an_active_order(
    terminology: Terminology,
) -> None:
    """The supply at home outlasts the prescription's validity: still taken."""
    state = _start_and_state(
        terminology,
        dispenseRequest={"validityPeriod": {"start": "2026-05-01", "end": "2026-08-01"}},
    )
    assert state == (_day("2026-05-01"), True, False, None)


def test_liquid_product_gives_its_concentration_for_suggestions(terminology: Terminology) -> None:
    raw = medication_request(
        id="liq",
        text="risperidone 1 MG/ML Oral Solution",
        dosages=[dose(2, "mL", per=(2, 1, "d"))],
    )
    (fact,) = facts(raw, terminology, draft=True)
    assert fact.unit_concentration_mg_per_ml == 1.0
    assert fact.unit_strength_mg is None
    assert fact.mg_per_day == 4.0
