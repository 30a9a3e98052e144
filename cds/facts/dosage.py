"""Normalise a MedicationRequest's dosageInstruction to mg per day, or say it cannot.

Handles doseQuantity and doseRange (the high end: the most the patient may take),
units mg, g, mcg/ug, timing.repeat frequency/period/periodUnit and the common timing
codes (BID, TID, ...). A dose in tablets or capsules counts only with a known strength
per unit (``strength_mg``, read from a single-ingredient product name such as
"quetiapine 25 MG Oral Tablet"). Returns ``None`` rather than guess: an as-needed dose
without a maximum per period, an unknown unit (mL, drops), a missing frequency, or
instructions that are sequential (different ``sequence`` numbers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

__all__ = ["mg_per_day", "strength_mg"]

MAX_MG_PER_DAY = 1_000_000.0
"""1 kg a day: any larger total is a data error, treated as an unknown dose."""

_UNIT_TO_MG = {
    "mg": 1.0,
    "milligram": 1.0,
    "milligrams": 1.0,
    "g": 1000.0,
    "gram": 1000.0,
    "grams": 1000.0,
    "mcg": 0.001,
    "ug": 0.001,
    "µg": 0.001,
    "microgram": 0.001,
    "micrograms": 0.001,
}
# UCUM annotations and plain words EHRs use for one tablet / capsule
_UNIT_DOSES = frozenset({"tablet", "tablets", "tab", "tabs", "tbl", "capsule", "capsules",
                         "cap", "caps", "1"})  # fmt: skip
_STRENGTH = re.compile(r"(?<![\d.,])(\d+(?:\.\d+)?)\s*mg\b", re.IGNORECASE)
_PERIOD_DAYS = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.0,
    "a": 365.0,
}
# HL7 GTSAbbreviation timing codes (R4 timing.code), as administrations per day
_TIMING_CODES = {
    "QD": 1.0, "AM": 1.0, "PM": 1.0, "BED": 1.0, "QOD": 0.5, "BID": 2.0, "TID": 3.0,
    "QID": 4.0, "Q1H": 24.0, "Q2H": 12.0, "Q3H": 8.0, "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0,
    "WK": 1 / 7, "MO": 1 / 30,
}  # fmt: skip


def mg_per_day(dosages: Sequence[Any] | None, strength_mg: float | None = None) -> float | None:
    """Total mg/day over concurrent dosage instructions (fhir.resources R4B ``Dosage``)."""
    if not dosages:
        return None
    if len({d.sequence for d in dosages}) > 1:
        return None
    total = 0.0
    for dosage in dosages:
        daily = _one_instruction(dosage, strength_mg)
        if daily is None:
            return None
        total += daily
    total = round(total, 3)
    # beyond any real daily dose (and beyond what the engine's JSON parser reads: it
    # crashes on exponent-form numbers such as 1e+16): an unknown dose
    return total if math.isfinite(total) and 0 <= total <= MAX_MG_PER_DAY else None


def strength_mg(display: str | None) -> float | None:
    """The strength of one unit from a single-strength product name ("... 25 MG Oral
    Tablet"); ``None`` when the name states no strength or several."""
    found = _STRENGTH.findall(display or "")
    return float(found[0]) if len(found) == 1 else None


def _one_instruction(dosage: Any, strength_mg: float | None) -> float | None:
    if dosage.asNeededBoolean or dosage.asNeededCodeableConcept is not None:
        return _max_per_period(dosage, strength_mg)
    dose = _dose_mg(dosage, strength_mg)
    per_day = _administrations_per_day(dosage.timing)
    if dose is None or per_day is None:
        return None
    return dose * per_day


def _dose_mg(dosage: Any, strength_mg: float | None) -> float | None:
    for rate in dosage.doseAndRate or []:
        if rate.doseQuantity is not None:
            return _quantity_mg(rate.doseQuantity, strength_mg)
        if rate.doseRange is not None and rate.doseRange.high is not None:
            return _quantity_mg(rate.doseRange.high, strength_mg)
    return None


def _quantity_mg(quantity: Any, strength_mg: float | None = None) -> float | None:
    if quantity.value is None:
        return None
    unit = (quantity.code or quantity.unit or "").strip().lower()
    factor = _UNIT_TO_MG.get(unit)
    if factor is None and strength_mg is not None and unit.strip("{}") in _UNIT_DOSES:
        factor = strength_mg
    if factor is None:
        return None
    return float(Decimal(quantity.value)) * factor


def _administrations_per_day(timing: Any) -> float | None:
    if timing is None:
        return None
    repeat = timing.repeat
    if repeat is not None and repeat.periodUnit is not None:
        days = _PERIOD_DAYS.get(repeat.periodUnit)
        period = float(repeat.period) if repeat.period is not None else 1.0
        if days is None or period <= 0:
            return None
        frequency = repeat.frequencyMax or repeat.frequency or 1
        return float(frequency) / (period * days)
    if timing.code is not None:
        for coding in timing.code.coding or []:
            if coding.code in _TIMING_CODES:
                return _TIMING_CODES[coding.code]
    return None


def _max_per_period(dosage: Any, strength_mg: float | None) -> float | None:
    """An as-needed order is bounded only by maxDosePerPeriod (a Ratio)."""
    ratio = dosage.maxDosePerPeriod
    if ratio is None or ratio.numerator is None or ratio.denominator is None:
        return None
    amount = _quantity_mg(ratio.numerator, strength_mg)
    denominator = ratio.denominator
    days = _PERIOD_DAYS.get((denominator.code or denominator.unit or "").strip())
    if amount is None or days is None or not denominator.value:
        return None
    return amount / (float(denominator.value) * days)
