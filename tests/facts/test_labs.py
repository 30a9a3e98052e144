"""Reading lab Observations: units, conversion, status, dates, bad values (cds.facts.labs)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from cds.errors import RulesError
from cds.facts.labs import LabCodes, is_lab_candidate, lab_facts, read_lab
from cds.hooks.services import LAB_CODES, PREFETCH

ROOT = Path(__file__).resolve().parents[2]
CODES = LabCodes.load(ROOT / "rules" / "valuesets" / "labs.tsv")
TODAY = dt.date(2026, 12, 5)
SNOMED = "http://snomed.info/sct"


def observation(code: str = "2276-4", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-10-02T08:00:00Z",
    }
    resource.update(extra)
    return resource


def quantity(value: Any, unit: str, *, ucum: bool = True, **extra: Any) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value, "unit": unit, **extra}
    if ucum:
        q.update(system="http://unitsofmeasure.org", code=unit)
    return {"valueQuantity": q}


@pytest.mark.parametrize(
    ("unit", "ucum", "expected"),
    [("ng/mL", True, 32.0), ("ug/L", True, 32.0), ("µg/L", False, 32.0),
     ("mcg/L", False, 32.0), ("NG/ML", False, 32.0), ("mg/L", True, 32000.0)],
)  # fmt: skip
def test_ferritin_units_convert_to_micrograms_per_litre(
    unit: str, ucum: bool, expected: float
) -> None:
    reading = read_lab(observation(**quantity(32, unit, ucum=ucum)), "ferritin", TODAY)
    assert reading.problem is None
    assert reading.value == pytest.approx(expected)


@pytest.mark.parametrize("unit", ["pmol/L", "g/dL", "", "ng", "IU/L"])
def test_an_unknown_unit_is_not_guessed(unit: str) -> None:
    reading = read_lab(observation(**quantity(32, unit)), "ferritin", TODAY)
    assert reading.value is None
    assert reading.problem == "unit not known for this test, value not used"


def test_ucum_code_wins_over_the_unit_spelling() -> None:
    q = {"value": 0.032, "unit": "ng/mL", "system": "http://unitsofmeasure.org", "code": "mg/L"}
    assert read_lab(observation(valueQuantity=q), "ferritin", TODAY).value == pytest.approx(32)


@pytest.mark.parametrize(
    "unit", ["mL/min/{1.73_m2}", "mL/min/1.73m2", "ml/min/1.73 m2", "mL/min/1.73m²", "mL/min"]
)
def test_egfr_unit_spellings(unit: str) -> None:
    reading = read_lab(observation("98979-8", **quantity(24, unit, ucum=False)), "egfr", TODAY)
    assert reading.value == 24.0


def test_transferrin_saturation_only_in_percent() -> None:
    assert (
        read_lab(observation("2502-3", **quantity(14, "%")), "transferrin_saturation", TODAY).value
        == 14
    )
    fraction = read_lab(
        observation("2502-3", **quantity(0.14, "1")), "transferrin_saturation", TODAY
    )
    assert fraction.value is None
    assert fraction.problem is not None


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), -float("inf"), "32", None, True, [32], {"v": 1}]
)
def test_a_value_that_is_not_a_finite_number_is_refused(value: Any) -> None:
    reading = read_lab(observation(**quantity(value, "ug/L")), "ferritin", TODAY)
    assert reading.value is None
    assert reading.problem == "valueQuantity.value is not a finite number"


@pytest.mark.parametrize("value", [1e308, 10**400, -5, 100_001])
def test_huge_or_negative_values_are_implausible(value: float) -> None:
    reading = read_lab(observation(**quantity(value, "ug/L")), "ferritin", TODAY)
    assert reading.value is None
    assert reading.problem == "value outside the plausible range, not used"


def test_a_percentage_over_100_is_implausible() -> None:
    reading = read_lab(observation("2502-3", **quantity(140, "%")), "transferrin_saturation", TODAY)
    assert reading.problem == "value outside the plausible range, not used"


def test_an_upper_bound_is_used_and_shown_a_lower_bound_is_not() -> None:
    below = read_lab(observation(**quantity(5, "ug/L", comparator="<")), "ferritin", TODAY)
    assert below.value == 5
    assert below.comparator == "<"
    [fact] = lab_facts([(below, "Observation/o1")], TODAY)
    assert fact.reading == "Ferritin <5 µg/L (2026-10-02)"
    above = read_lab(observation(**quantity(50, "ug/L", comparator=">")), "ferritin", TODAY)
    assert above.value is None
    assert above.problem is not None


@pytest.mark.parametrize(
    ("dates", "day"),
    [({"effectivePeriod": {"start": "2026-09-30"}}, "2026-09-30"),
     ({"effectiveInstant": "2026-09-29T10:00:00Z"}, "2026-09-29"),
     ({"issued": "2026-09-28T10:00:00+02:00"}, "2026-09-28")],
)  # fmt: skip
def test_the_date_comes_from_effective_then_issued(dates: dict[str, Any], day: str) -> None:
    raw = observation(**quantity(32, "ug/L"), **dates)
    del raw["effectiveDateTime"]
    [fact] = lab_facts([(read_lab(raw, "ferritin", TODAY), "Observation/o1")], TODAY)
    assert fact.reading.endswith(f"({day})")


def test_a_lab_without_a_date_or_from_the_future_is_not_used() -> None:
    raw = observation(**quantity(32, "ug/L"))
    del raw["effectiveDateTime"]
    assert read_lab(raw, "ferritin", TODAY).problem is not None
    future = observation(**quantity(32, "ug/L"), effectiveDateTime="2027-03-01")
    assert read_lab(future, "ferritin", TODAY).problem == "dated in the future, not used"


@pytest.mark.parametrize(
    ("value", "result"),
    [({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "10828004"}]}}, "positive"),
     ({"valueCodeableConcept": {"text": "Negative"}}, "negative"),
     ({"valueString": " positive "}, "positive"),
     ({"valueString": "NEG"}, "negative"),
     ({"valueString": "see comment"}, None),
     ({"valueCodeableConcept": {"coding": [{"display": "Negative"}], "text": "Positive"}}, None),
     ({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "10828004"}],
                                "text": "negative"}}, None),
     ({"valueQuantity": {"value": 5, "unit": "[IU]/L"}}, None)],
)  # fmt: skip
def test_pregnancy_tests_read_positive_or_negative(
    value: dict[str, Any], result: str | None
) -> None:
    reading = read_lab(observation("2106-3", **value), "pregnancy_test", TODAY)
    assert reading.result == result
    assert (reading.problem is None) == (result is not None)


@pytest.mark.parametrize(
    ("status", "counted"),
    [("final", True), ("amended", True), ("corrected", True), ("preliminary", False),
     ("registered", False), ("cancelled", False), ("entered-in-error", False), (None, False)],
)  # fmt: skip
def test_only_final_amended_corrected_results_count(status: str | None, counted: bool) -> None:
    assert is_lab_candidate(observation(status=status), CODES) is counted


def test_a_code_outside_the_value_set_or_another_system_is_not_a_lab() -> None:
    assert not is_lab_candidate(observation("2345-7"), CODES)  # glucose
    other = observation()
    other["code"]["coding"][0]["system"] = "http://example.org/local"
    assert not is_lab_candidate(other, CODES)


def test_the_latest_reading_of_each_test_becomes_the_fact() -> None:
    old = read_lab(
        observation(**quantity(20, "ug/L"), effectiveDateTime="2025-01-01"), "ferritin", TODAY
    )
    new = read_lab(observation(**quantity(90, "ug/L")), "ferritin", TODAY)
    egfr = read_lab(observation("98979-8", **quantity(24.456, "mL/min")), "egfr", TODAY)
    facts = lab_facts(
        [(old, "Observation/old"), (new, "Observation/new"), (egfr, "Observation/e")], TODAY
    )
    by_test = {f.test: f for f in facts}
    assert by_test["ferritin"].source == "Observation/new"
    assert by_test["ferritin"].age_days == (TODAY - dt.date(2026, 10, 2)).days
    assert by_test["egfr"].reading == "eGFR 24.46 mL/min/1.73m2 (2026-10-02)"
    saturation = read_lab(
        observation("2502-3", **quantity(14, "%")), "transferrin_saturation", TODAY
    )
    [fact] = lab_facts([(saturation, "Observation/t")], TODAY)
    assert fact.reading == "Transferrin saturation 14% (2026-10-02)"


def test_the_prefetch_template_asks_for_exactly_the_value_set_codes() -> None:
    assert set(LAB_CODES) == set(CODES.tests)
    assert all(f"http://loinc.org|{code}" in PREFETCH["observations"] for code in LAB_CODES)


@pytest.mark.parametrize(
    ("row", "message"),
    [("2276\tferritin\tx\tsrc", "labs.tsv:3:1: malformed LOINC code '2276'"),
     ("2276-5\tferritin\tx\tsrc", "labs.tsv:3:1: LOINC code '2276-5' fails its check digit"),
     ("2276-4\tiron\tx\tsrc", "labs.tsv:3:2: test 'iron'"),
     ("2276-4\tferritin\tx\t", "labs.tsv:3:4: 2276-4 has no source"),
     ("2276-4\tferritin\tx\tsrc\n2276-4\tferritin\tx\tsrc",
      "labs.tsv:4:1: 2276-4 is listed twice")],
)  # fmt: skip
def test_a_bad_value_set_row_is_refused(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "labs.tsv"
    header = "# a comment line\nloinc\ttest\tdisplay\tsource\n"
    path.write_text(header + row + "\n", encoding="utf-8")
    with pytest.raises(RulesError, match=re.escape(message)):
        LabCodes.load(path)
