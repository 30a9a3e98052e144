"""mg_per_day: dosage instructions -> total mg/day, or None rather than a guess."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.facts.dosage import mg_per_day
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


def test_as_needed_without_maximum_is_unknown() -> None:
    assert daily(dose(50, asNeededBoolean=True)) is None
    assert daily(dose(50, asNeededCodeableConcept={"text": "agitation"})) is None


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
