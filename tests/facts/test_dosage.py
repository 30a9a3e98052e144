"""mg_per_day: dosage instructions -> total mg/day, or None rather than a guess."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.facts.dosage import mg_per_day, strength_mg
from tests.conftest import load_example
from tests.facts.fhir_builders import GTS, dose, quantity


def daily(*instructions: dict[str, Any]) -> float | None:
    return mg_per_day([Dosage.model_validate(i) for i in instructions])


@pytest.mark.parametrize(
    ("instruction", "expected"),
    [
        pytest.param(dose(400, per=(2, 1, "d")), 800.0, id="mg-twice-a-day"),
        pytest.param(dose(0.4, "g", per=(2, 1, "d")), 800.0, id="g"),
        pytest.param(dose(500, "ug"), 0.5, id="ucum-ug"),
        pytest.param(
            {
                "doseAndRate": [{"doseQuantity": quantity(500, "mcg", code=None)}],
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            },
            0.5,
            id="mcg-unit-only",
        ),
        pytest.param(
            {
                "doseAndRate": [{"doseQuantity": quantity(25, "MG", code=None)}],
                "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            },
            25.0,
            id="unit-case-insensitive",
        ),
        pytest.param(dose(100, per=(1, 8, "h")), 300.0, id="every-8-hours"),
        pytest.param(dose(50, per=(1, 12, "h")), 100.0, id="every-12-hours"),
        pytest.param(dose(70, per=(1, 1, "wk")), 10.0, id="once-a-week"),
        pytest.param(dose(10, per=(1, 1, "wk")), 1.429, id="weekly-rounded-to-3-decimals"),
        pytest.param(dose(25, per=(3, 1, "d")), 75.0, id="three-a-day"),
        pytest.param(dose(200, per=None, code="QD"), 200.0, id="code-QD"),
        pytest.param(dose(300, per=None, code="BID"), 600.0, id="code-BID"),
        pytest.param(dose(100, per=None, code="TID"), 300.0, id="code-TID"),
        pytest.param(dose(50, per=None, code="QID"), 200.0, id="code-QID"),
        pytest.param(dose(50, per=None, code="Q6H"), 200.0, id="code-Q6H"),
    ],
)
def test_single_instruction(instruction: dict[str, Any], expected: float) -> None:
    assert daily(instruction) == pytest.approx(expected)


def test_period_defaults_to_one_and_frequency_to_once() -> None:
    assert daily(dose(20, per=None, timing={"repeat": {"frequency": 2, "periodUnit": "d"}})) == 40
    assert daily(dose(20, per=None, timing={"repeat": {"period": 1, "periodUnit": "d"}})) == 20


def test_frequency_max_gives_the_most_the_patient_may_take() -> None:
    timing = {"repeat": {"frequency": 1, "frequencyMax": 3, "period": 1, "periodUnit": "d"}}
    assert daily(dose(50, per=None, timing=timing)) == 150


def test_repeat_takes_precedence_over_timing_code() -> None:
    instruction = dose(100, per=(2, 1, "d"))
    instruction["timing"]["code"] = {"coding": [{"system": GTS, "code": "TID"}]}
    assert daily(instruction) == 200


def test_dose_range_uses_the_high_end() -> None:
    instruction = dose(0, per=(2, 1, "d"))
    instruction["doseAndRate"] = [{"doseRange": {"low": quantity(200), "high": quantity(400)}}]
    assert daily(instruction) == 800


def test_dose_range_without_high_end_is_unknown() -> None:
    instruction = dose(0, per=(2, 1, "d"))
    instruction["doseAndRate"] = [{"doseRange": {"low": quantity(200)}}]
    assert daily(instruction) is None


def test_concurrent_instructions_are_summed() -> None:
    morning = dose(200, per=None, code="AM")
    bedtime = dose(400, per=None, code="BED")
    assert daily(morning, bedtime) == 600
    assert daily(dose(200, sequence=1), dose(400, "mg", per=(2, 1, "d"), sequence=1)) == 1000


def test_sequential_instructions_are_not_added() -> None:
    """A titration (sequence 1 then 2) has no single daily dose."""
    week_one = dose(50, sequence=1)
    then = dose(100, sequence=2)
    assert daily(week_one, then) is None


def test_as_needed_without_maximum_counts_at_its_highest_frequency() -> None:
    """ "50 mg up to twice a day as needed": at most 100 mg/day."""
    up_to_twice = dose(50, per=(1, 1, "d"), asNeededBoolean=True)
    up_to_twice["timing"]["repeat"]["frequencyMax"] = 2
    assert daily(up_to_twice) == 100.0
    assert daily(dose(50, asNeededCodeableConcept={"text": "agitation"})) == 50.0


def test_as_needed_without_maximum_or_frequency_is_unknown() -> None:
    assert daily(dose(50, per=None, asNeededBoolean=True)) is None
    assert daily(dose(50, per=None, asNeededCodeableConcept={"text": "agitation"})) is None


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        pytest.param(quantity(200), quantity(1, "d"), 200.0, id="200mg-per-day"),
        pytest.param(quantity(100), quantity(12, "h"), 200.0, id="100mg-per-12h"),
        pytest.param(quantity(0.3, "g"), quantity(1, "d"), 300.0, id="grams"),
        pytest.param(quantity(700), quantity(1, "wk"), 100.0, id="per-week"),
    ],
)
def test_as_needed_with_maximum_gives_the_daily_maximum(
    numerator: dict[str, Any], denominator: dict[str, Any], expected: float
) -> None:
    ratio = {"numerator": numerator, "denominator": denominator}
    instruction = dose(50, asNeededBoolean=True, maxDosePerPeriod=ratio)
    assert daily(instruction) == pytest.approx(expected)
    # the ordinary dose and timing do not count for an as-needed order
    assert daily(dose(9999, per=(9, 1, "h"), asNeededBoolean=True, maxDosePerPeriod=ratio)) == (
        pytest.approx(expected)
    )


def test_as_needed_maximum_in_tablets_is_unknown() -> None:
    ratio = {"numerator": quantity(4, "tablet", code=None), "denominator": quantity(1, "d")}
    assert daily(dose(50, asNeededBoolean=True, maxDosePerPeriod=ratio)) is None


def test_as_needed_false_is_a_regular_order() -> None:
    assert daily(dose(50, per=(2, 1, "d"), asNeededBoolean=False)) == 100


@pytest.mark.parametrize("unit", ["tablet", "mL", "{tbl}", "mg/kg"])
def test_unknown_unit_is_unknown(unit: str) -> None:
    assert daily(dose(2, unit)) is None


def test_one_unknown_instruction_makes_the_total_unknown() -> None:
    assert daily(dose(200), dose(1, "tablet")) is None


@pytest.mark.parametrize(
    "instruction",
    [
        pytest.param(dose(200, per=None), id="no-timing"),
        pytest.param(dose(200, per=None, timing={"event": ["2026-11-01"]}), id="event-only"),
        pytest.param(
            dose(200, per=None, timing={"repeat": {"frequency": 2}}), id="repeat-without-unit"
        ),
        pytest.param(
            dose(200, per=None, timing={"code": {"text": "with meals"}}), id="code-without-coding"
        ),
        pytest.param(dose(200, per=(1, 0, "d")), id="zero-period"),
        pytest.param({"timing": {"code": {"coding": [{"code": "BID"}]}}}, id="no-dose"),
        pytest.param(
            {
                "doseAndRate": [{"doseQuantity": {"unit": "mg", "code": "mg"}}],
                "timing": {"code": {"coding": [{"code": "BID"}]}},
            },
            id="dose-without-value",
        ),
    ],
)
def test_incomplete_instruction_is_unknown(instruction: dict[str, Any]) -> None:
    assert daily(instruction) is None


@pytest.mark.parametrize("dosages", [None, []])
def test_no_instructions(dosages: list[Any] | None) -> None:
    assert mg_per_day(dosages) is None


def test_restless_back_example_orders() -> None:
    """The case report's doses: 0.6 g/day taken, 0.8 g/day being ordered."""
    example = load_example("restless-back-amisulpride.json")
    draft = example["context"]["draftOrders"]["entry"][0]["resource"]
    active = example["prefetch"]["medications"]["entry"][0]["resource"]
    assert mg_per_day(MedicationRequest.model_validate(active).dosageInstruction) == 600
    assert mg_per_day(MedicationRequest.model_validate(draft).dosageInstruction) == 800


# --- strength_mg: the strength of one tablet or capsule, from the product name ------------


@pytest.mark.parametrize(
    ("display", "expected"),
    [
        ("quetiapine 25 MG Oral Tablet", 25.0),
        ("24 HR quetiapine 300 MG Extended Release Oral Tablet", 300.0),
        ("amisulpride 200 mg tablet", 200.0),
        ("clozapine 12.5mg tablet", 12.5),
        ("Sertraline 50 Mg capsule", 50.0),
    ],
)
def test_strength_of_a_single_strength_product(display: str, expected: float) -> None:
    assert strength_mg(display) == expected


@pytest.mark.parametrize(
    "display",
    [
        pytest.param("fluoxetine 25 MG / olanzapine 6 MG Oral Capsule", id="two-strengths"),
        pytest.param(
            "{1 (24 HR quetiapine 200 MG Extended Release Oral Tablet) / "
            "11 (24 HR quetiapine 300 MG Extended Release Oral Tablet) } Pack",
            id="pack",
        ),
        pytest.param("quetiapine Oral Tablet", id="no-strength"),
        pytest.param("haloperidol 500 MCG tablet", id="micrograms-are-not-mg"),
        pytest.param("paracetamol 1 g tablet", id="grams-are-not-mg"),
        pytest.param("50 mgs of something", id="mg-inside-a-word"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
    ],
)
def test_no_strength_unless_exactly_one_is_stated(display: str | None) -> None:
    assert strength_mg(display) is None


@pytest.mark.parametrize(
    ("display", "whole"),
    [
        pytest.param("haloperidol 2,5 mg tablet", 2.5, id="decimal-comma"),
        pytest.param("lithium carbonate 1,000 mg tablet", 1000.0, id="thousands-separator"),
    ],
)
def test_strength_is_not_read_from_the_tail_of_a_number(display: str, whole: float) -> None:
    """Regression (cds.facts.dosage._STRENGTH): the pattern has no left boundary, so "2,5 mg"
    reads as 5 mg and "1,000 mg" as 0 mg; two tablets a day then count as 10 mg/day and
    0 mg/day. The whole number, or no strength at all (None), is acceptable."""
    assert strength_mg(display) in (None, whole)


# --- mg_per_day with a strength: doses in tablets and capsules ----------------------------


@pytest.mark.parametrize(
    "unit",
    ["tablet", "tablets", "TAB", "capsule", "caps", "{tablet}", "{tbl}", "{capsule}", "1"],
)
def test_tablets_count_with_a_strength(unit: str) -> None:
    two_bid = Dosage.model_validate(dose(2, unit, per=None, code="BID"))
    assert mg_per_day([two_bid], 25.0) == 100.0
    assert mg_per_day([two_bid]) is None  # without a strength: unknown, not a guess


def test_ucum_tablet_annotation_without_a_unit_text() -> None:
    instruction = {
        "doseAndRate": [
            {
                "doseQuantity": {
                    "value": 2,
                    "system": "http://unitsofmeasure.org",
                    "code": "{tablet}",
                }
            }
        ],
        "timing": {"code": {"coding": [{"system": GTS, "code": "BID"}]}},
    }
    assert mg_per_day([Dosage.model_validate(instruction)], 25.0) == 100.0


def test_a_strength_does_not_change_a_dose_in_mg() -> None:
    assert mg_per_day([Dosage.model_validate(dose(300, per=(2, 1, "d")))], 25.0) == 600.0
    assert mg_per_day([Dosage.model_validate(dose(0.3, "g", per=(2, 1, "d")))], 25.0) == 600.0


@pytest.mark.parametrize("unit", ["mL", "drop", "puff", "{spray}", "mg/kg"])
def test_a_strength_does_not_make_other_units_count(unit: str) -> None:
    assert mg_per_day([Dosage.model_validate(dose(2, unit, code="BID", per=None))], 25.0) is None


def test_tablets_and_mg_instructions_are_summed_with_a_strength() -> None:
    morning = Dosage.model_validate(dose(1, "tablet", per=None, code="AM"))
    bedtime = Dosage.model_validate(dose(50, per=None, code="BED"))
    assert mg_per_day([morning, bedtime], 25.0) == 75.0
    assert mg_per_day([morning, bedtime]) is None


def test_as_needed_maximum_in_tablets_counts_with_a_strength() -> None:
    ratio = {"numerator": quantity(4, "tablet", code=None), "denominator": quantity(1, "d")}
    instruction = Dosage.model_validate(
        dose(1, "tablet", asNeededBoolean=True, maxDosePerPeriod=ratio)
    )
    assert mg_per_day([instruction], 25.0) == 100.0
    assert mg_per_day([instruction]) is None
