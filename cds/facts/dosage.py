"""Normalise a MedicationRequest's dosageInstruction to mg per day, or say it cannot.

Read, per instruction, first found wins:
1. a structured dose (``doseQuantity``, or ``doseRange``'s high end: the most the patient
   may take) times the administrations per day from ``timing.repeat`` (frequency[Max] per
   period; or its ``when`` / ``timeOfDay`` entries), else from ``timing.code`` (HL7
   GTSAbbreviation and common local codes such as QHS, else the code's words);
2. a rate (``rateQuantity`` in mg/d or mg/h, ``rateRatio`` such as 234 mg per 28 days);
3. the sig text (``text``, then ``patientInstruction``; ``cds.facts.sig``), used for the
   frequency too when the structured dose has no timing, and only if it states the
   same dose.
Units come from the one unit table (``cds.units``): mg, g, mcg in any spelling; tablets
and capsules (words or UCUM annotations such as ``{pill}``) with the product's strength
(``strength_mg``); mL with its concentration (``concentration_mg_per_ml``). An as-needed
dose counts at its maximum (``maxDosePerPeriod``, else the dose at its highest
frequency). ``None`` rather than a guess: no readable frequency, an unknown unit, or
sequential instructions (different ``sequence`` numbers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cds.facts.sig import as_ordered_text, frequency_per_day, read_sig
from cds.units import is_unit_dose, mass_factor, normalise_unit, period_days, volume_factor

__all__ = [
    "DailyDose",
    "concentration_mg_per_ml",
    "daily_dose",
    "mg_per_day",
    "strength_mg",
]

MAX_MG_PER_DAY = 1_000_000.0
"""1 kg a day: any larger total is a data error, treated as an unknown dose."""

_STRENGTH = re.compile(r"(?<![\d.,])(\d+(?:\.\d+)?)\s*mg\b(?!\s*/\s*(?:\d+(?:\.\d+)?\s*)?ml)", re.I)
_CONCENTRATION = re.compile(
    r"(?<![\d.,])(\d+(?:\.\d+)?)\s*mg\s*/\s*(\d+(?:\.\d+)?)?\s*ml\b", re.IGNORECASE
)
# HL7 GTSAbbreviation timing codes (R4 timing.code) and local codes EHRs send in their
# place, as administrations per day
_TIMING_CODES = {
    "QD": 1.0, "AM": 1.0, "PM": 1.0, "BED": 1.0, "QHS": 1.0, "HS": 1.0, "QAM": 1.0,
    "QPM": 1.0, "QOD": 0.5, "BID": 2.0, "TID": 3.0, "QID": 4.0, "Q1H": 24.0, "Q2H": 12.0,
    "Q3H": 8.0, "Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "Q12H": 2.0, "Q24H": 1.0,
    "WK": 1 / 7, "MO": 1 / 30,
}  # fmt: skip


@dataclass(frozen=True)
class DailyDose:
    """mg/day, and the prescriber's own words when the dose is not daily."""

    mg_per_day: float
    as_ordered: str | None = None


def mg_per_day(
    dosages: Sequence[Any] | None,
    strength_mg: float | None = None,
    mg_per_ml: float | None = None,
) -> float | None:
    """Total mg/day over concurrent dosage instructions (fhir.resources R4B ``Dosage``)."""
    dose = daily_dose(dosages, strength_mg, mg_per_ml)
    return dose.mg_per_day if dose is not None else None


def daily_dose(
    dosages: Sequence[Any] | None,
    strength_mg: float | None = None,
    mg_per_ml: float | None = None,
) -> DailyDose | None:
    """``mg_per_day`` with the dose as ordered ("234 mg every 4 weeks")."""
    if not dosages:
        return None
    if len({d.sequence for d in dosages}) > 1:
        return None
    total = 0.0
    words: list[str] = []
    for dosage in dosages:
        one = _one_instruction(dosage, strength_mg, mg_per_ml)
        if one is None:
            return None
        total += one.mg_per_day
        if one.as_ordered:
            words.append(one.as_ordered)
    total = round(total, 3)
    # beyond any real daily dose (and beyond what the engine's JSON parser reads: it
    # crashes on exponent-form numbers such as 1e+16): an unknown dose
    if not (math.isfinite(total) and 0 <= total <= MAX_MG_PER_DAY):
        return None
    return DailyDose(total, words[0] if len(dosages) == 1 and words else None)


def strength_mg(display: str | None) -> float | None:
    """The strength of one unit from a single-strength product name ("... 25 MG Oral
    Tablet"); ``None`` when the name states no strength, several, or a concentration."""
    found = _STRENGTH.findall(display or "")
    return float(found[0]) if len(found) == 1 else None


def concentration_mg_per_ml(display: str | None) -> float | None:
    """mg per mL from a product name ("risperidone 1 MG/ML Oral Solution", "... 25 MG
    per 5 ML"); ``None`` when it states none or several."""
    found = _CONCENTRATION.findall(display or "")
    if len(found) != 1:
        return None
    mg, ml = found[0]
    volume = float(ml) if ml else 1.0
    return float(mg) / volume if volume > 0 else None


def _one_instruction(
    dosage: Any, strength_mg: float | None, mg_per_ml: float | None
) -> DailyDose | None:
    as_needed = bool(dosage.asNeededBoolean) or dosage.asNeededCodeableConcept is not None
    if as_needed and dosage.maxDosePerPeriod is not None:
        daily = _max_per_period(dosage, strength_mg, mg_per_ml)
        return DailyDose(daily) if daily is not None else None
    dose, structured = _dose_mg(dosage, strength_mg, mg_per_ml)
    rate = _rate_mg_per_day(dosage)
    if dose is None and not structured and rate is not None:
        return DailyDose(rate)
    per_day = _administrations_per_day(dosage.timing)
    if dose is not None and per_day is not None:
        return DailyDose(dose * per_day, as_ordered_text(dose, per_day))
    return _from_text(dosage, dose, structured, strength_mg, mg_per_ml)


def _from_text(
    dosage: Any,
    dose: float | None,
    structured: bool,
    strength_mg: float | None,
    mg_per_ml: float | None,
) -> DailyDose | None:
    """The sig text, when the structure says too little; it must not contradict it."""
    if structured and dose is None:
        return None  # a structured dose in a unit we cannot read: the text cannot fix it
    for text in (dosage.text, dosage.patientInstruction):
        sig = read_sig(text, strength_mg, mg_per_ml)
        if sig is None:
            continue
        if dose is not None and any(abs(mg - dose) > 1e-6 for mg, _ in sig.doses):
            return None
        if dose is not None and not sig.doses:
            return None
        return DailyDose(sig.mg_per_day, sig.as_ordered)
    return None


def _dose_mg(
    dosage: Any, strength_mg: float | None, mg_per_ml: float | None
) -> tuple[float | None, bool]:
    """(mg per administration, whether a structured dose was given at all)."""
    for rate in dosage.doseAndRate or []:
        if rate.doseQuantity is not None:
            return _quantity_mg(rate.doseQuantity, strength_mg, mg_per_ml), True
        if rate.doseRange is not None and rate.doseRange.high is not None:
            return _quantity_mg(rate.doseRange.high, strength_mg, mg_per_ml), True
    return None, False


def _units_of(quantity: Any) -> Iterable[str]:
    """A Quantity's code, then its human unit: EHRs put the readable one in either."""
    return (u for u in (quantity.code, quantity.unit) if u)


def _quantity_mg(
    quantity: Any, strength_mg: float | None = None, mg_per_ml: float | None = None
) -> float | None:
    value = _number(quantity.value)
    if value is None:
        return None
    for unit in _units_of(quantity):
        factor = mass_factor(unit)
        if factor is None and strength_mg is not None and is_unit_dose(unit):
            factor = strength_mg
        volume = volume_factor(unit)
        if factor is None and volume is not None and mg_per_ml is not None:
            factor = volume * mg_per_ml
        if factor is not None:
            return value * factor
    return None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(Decimal(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _rate_mg_per_day(dosage: Any) -> float | None:
    """``rateQuantity`` "300 mg/d" / "12.5 mg/h", or ``rateRatio`` 234 mg per 28 d."""
    for rate in dosage.doseAndRate or []:
        if rate.rateQuantity is not None:
            return _per_time(rate.rateQuantity)
        ratio = rate.rateRatio
        if ratio is not None and ratio.numerator is not None and ratio.denominator is not None:
            amount = _quantity_mg(ratio.numerator)
            days = _duration_days(ratio.denominator)
            return amount / days if amount is not None and days else None
    return None


def _per_time(quantity: Any) -> float | None:
    """mg per unit of time from a UCUM rate unit such as ``mg/d``, ``mg/24.h``, ``mg/h``."""
    value = _number(quantity.value)
    for unit in _units_of(quantity):
        mass, _, per = normalise_unit(unit).partition("/")
        factor = mass_factor(mass)
        count, _, time_unit = per.rpartition(".")
        days = period_days(time_unit or per)
        every = _number(count) if count else 1.0
        if value is not None and factor is not None and days and every:
            return value * factor / (days * every)
    return None


def _duration_days(quantity: Any) -> float | None:
    value = _number(quantity.value)
    for unit in _units_of(quantity):
        days = period_days(unit)
        if value and days:
            return value * days
    return None


def _administrations_per_day(timing: Any) -> float | None:
    if timing is None:
        return None
    repeat = timing.repeat
    if repeat is not None and repeat.periodUnit is not None:
        days = period_days(repeat.periodUnit)
        period = float(repeat.period) if repeat.period is not None else 1.0
        if days is None or period <= 0:
            return None
        frequency = repeat.frequencyMax or repeat.frequency or 1
        return float(frequency) / (period * days)
    if repeat is not None and repeat.frequency is None and (repeat.when or repeat.timeOfDay):
        return float(len(repeat.when or []) + len(repeat.timeOfDay or []))
    if timing.code is not None:
        return _timing_code_per_day(timing.code)
    return None


def _timing_code_per_day(code: Any) -> float | None:
    for coding in code.coding or []:
        if coding.code is not None and coding.code.upper() in _TIMING_CODES:
            return _TIMING_CODES[coding.code.upper()]
    for text in (code.text, *(c.display for c in code.coding or [])):
        per_day = frequency_per_day(text)
        if per_day is not None:
            return per_day
    return None


def _max_per_period(
    dosage: Any, strength_mg: float | None, mg_per_ml: float | None
) -> float | None:
    """An as-needed order is bounded by maxDosePerPeriod (a Ratio)."""
    ratio = dosage.maxDosePerPeriod
    if ratio is None or ratio.numerator is None or ratio.denominator is None:
        return None
    amount = _quantity_mg(ratio.numerator, strength_mg, mg_per_ml)
    days = _duration_days(ratio.denominator)
    if amount is None or not days:
        return None
    return amount / days
