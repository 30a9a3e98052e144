"""Lab Observations -> ``lab`` facts: ferritin, transferrin saturation, eGFR, pregnancy tests.

Iron deficiency, kidney failure and pregnancy are secondary causes of restless legs to
check before blaming a drug alone (IRLSSG). Which LOINC codes count as which test is a
value set a rule author keeps (``rules/valuesets/labs.tsv``, each code with the source it
was verified in); the thresholds are the rules' (``rules/config.yaml``), not this module's.

Only what can be read without guessing is used: a final, amended or corrected result, with
a date, of a value set code, whose value is a finite number in a unit this module knows
(``cds.units.LAB_UNITS``; ng/mL is µg/L) or, for a pregnancy test, a stated positive or
negative. Anything else in a lab of ours is an ``InputIssue`` and is not used. Of each
test only the latest usable result becomes a fact: the one a clinician would act on, and
the one "no ferritin in the last 12 months" is about.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds.errors import Problem, RulesError
from cds.facts.model import LabFact, epoch_day
from cds.facts.valuesets import LOINC, read_labs
from cds.units import lab_unit_factor

__all__ = [
    "LAB_PREFETCH_KEY",
    "LAB_TESTS",
    "LOINC",
    "LabCodes",
    "LabReading",
    "is_lab_candidate",
    "lab_facts",
    "read_lab",
]

LAB_PREFETCH_KEY = "observations"
"""The prefetch key (``cds.hooks.services``) whose answer, even an empty one, means the
labs were looked for: only then can a rule say "no ferritin on record"."""

COUNTED_STATUSES = frozenset({"final", "amended", "corrected"})


@dataclass(frozen=True)
class _Test:
    name: str
    """How a card names the test: "Ferritin"."""
    unit: str | None
    """The unit values are shown and compared in; ``None`` for a positive/negative test."""
    plausible: tuple[float, float] = (0.0, 0.0)
    """Values outside this range are an input error (a typo, a wrong unit), not a result."""


LAB_TESTS: dict[str, _Test] = {
    "ferritin": _Test("Ferritin", "µg/L", (0.0, 100_000.0)),
    "transferrin_saturation": _Test("Transferrin saturation", "%", (0.0, 100.0)),
    "egfr": _Test("eGFR", "mL/min/1.73m2", (0.0, 300.0)),
    "pregnancy_test": _Test("Pregnancy test", None),
}
"""The tests a ``labs.tsv`` row may name (its ``test`` column)."""

_POSITIVE = frozenset({"positive", "pos", "detected", "reactive"})
_NEGATIVE = frozenset({"negative", "neg", "not detected", "non-reactive", "nonreactive"})
_SNOMED_POSITIVE = ("http://snomed.info/sct", "10828004")
"""Positive (qualifier value), in LOINC's answer list LL360-9 (see labs.tsv sources)."""


@dataclass(frozen=True)
class LabCodes:
    """LOINC code -> test, from ``labs.tsv`` (columns loinc, test, display, source)."""

    tests: Mapping[str, str]

    @classmethod
    def read(cls, path: Path) -> tuple[LabCodes, list[Problem]]:
        """The value set and its ``file:line:col`` problems (``cds.facts.valuesets``, the
        one reader of value-set files; ``rules check`` reports these)."""
        problems: list[Problem] = []
        return cls(read_labs(path, LAB_TESTS, problems)), problems

    @classmethod
    def load(cls, path: Path) -> LabCodes:
        """The value set; ``RulesError`` when a row is wrong (the service refuses to start)."""
        codes, problems = cls.read(path)
        if problems:
            raise RulesError(problems)
        return codes

    def test_of(self, observation: Mapping[str, Any]) -> str | None:
        """The value set test an Observation's ``code`` names, if any."""
        code = observation.get("code")
        codings = code.get("coding") if isinstance(code, Mapping) else None
        for coding in codings if isinstance(codings, list) else ():
            if isinstance(coding, Mapping) and coding.get("system") == LOINC:
                test = self.tests.get(str(coding.get("code")))
                if test is not None:
                    return test
        return None


def is_lab_candidate(observation: Mapping[str, Any], codes: LabCodes) -> bool:
    """A lab the rules read (worth validating): a value set code, in a counted status."""
    return observation.get("status") in COUNTED_STATUSES and codes.test_of(observation) is not None


@dataclass(frozen=True)
class LabReading:
    """One usable result, or why a lab of ours could not be used (``problem``)."""

    test: str
    day: int | None = None
    value: float | None = None
    result: str | None = None
    comparator: str = ""
    problem: str | None = None


def read_lab(observation: Mapping[str, Any], test: str, today: dt.date) -> LabReading:
    """The date and value of one value set lab, converted to its test's unit."""
    day = _day(observation)
    if day is None:
        return LabReading(test, problem="no effective date or issued date, not used")
    if day > (epoch_day(today) or 0) + 1:  # a day's grace for time zones
        return LabReading(test, problem="dated in the future, not used")
    spec = LAB_TESTS[test]
    if spec.unit is None:
        result = _presence(observation)
        if result is None:
            return LabReading(test, day, problem="result is neither positive nor negative")
        return LabReading(test, day, result=result)
    quantity = observation.get("valueQuantity")
    if not isinstance(quantity, Mapping):
        return LabReading(test, day, problem="no valueQuantity, not used")
    raw = quantity.get("value")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return LabReading(test, day, problem="valueQuantity.value is not a finite number")
    try:
        number = float(raw)
    except OverflowError:  # an integer beyond any float
        return LabReading(test, day, problem="value outside the plausible range, not used")
    if not math.isfinite(number):
        return LabReading(test, day, problem="valueQuantity.value is not a finite number")
    comparator = quantity.get("comparator") or ""
    if comparator not in ("", "<", "<="):
        return LabReading(test, day, problem="a lower bound ('>'), not a value; not used")
    unit = quantity.get("code") if quantity.get("system") == _UCUM else None
    unit = unit or quantity.get("unit")
    factor = lab_unit_factor(test, unit) if isinstance(unit, str) else None
    if factor is None:
        return LabReading(test, day, problem="unit not known for this test, value not used")
    # to 4 decimals, as a result is reported: a 1e-9 or denormal value would otherwise
    # reach the rule engine, which refuses such numbers for the whole request (422)
    value = round(number * factor, 4)
    low, high = spec.plausible
    if not low <= value <= high:
        return LabReading(test, day, problem="value outside the plausible range, not used")
    return LabReading(test, day, value=value, comparator=comparator)


_UCUM = "http://unitsofmeasure.org"


def _day(observation: Mapping[str, Any]) -> int | None:
    period = observation.get("effectivePeriod")
    for value in (
        observation.get("effectiveDateTime"),
        observation.get("effectiveInstant"),
        period.get("start") if isinstance(period, Mapping) else None,
        observation.get("issued"),
    ):
        if isinstance(value, str) and (day := epoch_day(value)) is not None:
            return day
    return None


def _presence(observation: Mapping[str, Any]) -> str | None:
    texts: list[str] = []
    concept = observation.get("valueCodeableConcept")
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or ():
            if isinstance(coding, Mapping):
                if (coding.get("system"), coding.get("code")) == _SNOMED_POSITIVE:
                    texts.append("positive")
                texts.append(str(coding.get("display") or ""))
        texts.append(str(concept.get("text") or ""))
    if isinstance(observation.get("valueString"), str):
        texts.append(observation["valueString"])
    words = {" ".join(text.lower().split()) for text in texts}
    positive, negative = bool(words & _POSITIVE), bool(words & _NEGATIVE)
    if positive == negative:
        return None  # neither, or both (a contradiction is not guessed at)
    return "positive" if positive else "negative"


def lab_facts(readings: Iterable[tuple[LabReading, str]], today: dt.date) -> list[LabFact]:
    """The latest usable reading of each test (``source`` is its ``Observation/id``)."""
    today_day = epoch_day(today)
    assert today_day is not None
    latest: dict[str, tuple[LabReading, str]] = {}
    for reading, source in readings:
        if reading.problem is not None or reading.day is None:
            continue
        kept = latest.get(reading.test)
        if kept is None or (kept[0].day or 0) < reading.day:
            latest[reading.test] = (reading, source)
    return [_fact(reading, source, today_day) for reading, source in latest.values()]


def _fact(reading: LabReading, source: str, today_day: int) -> LabFact:
    assert reading.day is not None
    spec = LAB_TESTS[reading.test]
    date = (dt.date(1970, 1, 1) + dt.timedelta(days=reading.day)).isoformat()
    if reading.value is not None:
        space = "" if spec.unit == "%" else " "
        shown = f"{reading.comparator}{_number(reading.value)}{space}{spec.unit}"
    else:
        shown = str(reading.result)
    return LabFact(
        test=reading.test,
        value=reading.value,
        result=reading.result,
        unit=spec.unit or "",
        day=reading.day,
        age_days=today_day - reading.day,
        reading=f"{spec.name} {shown} ({date})",
        source=source,
    )


def _number(value: float) -> str:
    """As a lab report shows it: 32, 24.5, 0.75 (no float noise)."""
    return f"{value:.2f}".rstrip("0").rstrip(".") if not value.is_integer() else str(int(value))
