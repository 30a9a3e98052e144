"""The one unit table: how the spellings of a dose's unit map to milligrams.

Dose reading (``cds.facts.dosage``, ``cds.facts.sig``) and card rendering
(``cds.cards.render``, which scales mass doses in a suggestion) both read it, so a unit
the service can read is a unit a suggestion can change, and the reverse.

Spellings seen in EHR payloads and sig text: UCUM codes (``mg``, ``g``, ``ug``), their
upper-case forms (``MG``), words (milligram(s), gram(s), microgram(s)), ``mcg``, and the
micro sign or Greek mu (``µg``, ``μg``). Units of presentation (tablet, capsule, the
UCUM annotations ``{tablet}``, ``{pill}``...) count one unit of the product, whose
strength must come from elsewhere; ``mL`` needs a stated concentration.
"""

from __future__ import annotations

__all__ = [
    "LAB_UNITS",
    "MASS_TO_MG",
    "PERIOD_DAYS",
    "UNIT_DOSE_WORDS",
    "VOLUME_TO_ML",
    "is_unit_dose",
    "lab_unit_factor",
    "mass_factor",
    "normalise_unit",
    "period_days",
    "volume_factor",
]

MASS_TO_MG: dict[str, float] = {
    "mg": 1.0,
    "milligram": 1.0,
    "milligrams": 1.0,
    "milligramme": 1.0,
    "milligrammes": 1.0,
    "g": 1000.0,
    "gm": 1000.0,
    "gram": 1000.0,
    "grams": 1000.0,
    "gramme": 1000.0,
    "grammes": 1000.0,
    "mcg": 0.001,
    "ug": 0.001,
    "microgram": 0.001,
    "micrograms": 0.001,
    "microgramme": 0.001,
    "microgrammes": 0.001,
}
"""Mass units, lower case, micro signs folded to ``u`` (``normalise_unit``)."""

UNIT_DOSE_WORDS = frozenset(
    {"tablet", "tablets", "tab", "tabs", "tbl", "tbls", "pill", "pills", "capsule", "capsules",
     "cap", "caps", "caplet", "caplets", "each", "ea", "dose unit", "unit dose", "1"}
)  # fmt: skip
"""One unit of the product: words and UCUM annotations (braces stripped)."""

VOLUME_TO_ML: dict[str, float] = {
    "ml": 1.0,
    "millilitre": 1.0,
    "millilitres": 1.0,
    "milliliter": 1.0,
    "milliliters": 1.0,
    "cc": 1.0,
}

PERIOD_DAYS: dict[str, float] = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "hr": 1 / 24,
    "hour": 1 / 24,
    "hours": 1 / 24,
    "d": 1.0,
    "day": 1.0,
    "days": 1.0,
    "wk": 7.0,
    "week": 7.0,
    "weeks": 7.0,
    "mo": 30.0,
    "month": 30.0,
    "months": 30.0,
    "a": 365.0,
}
"""UCUM units of time (``Timing.repeat.periodUnit``) and their words, in days."""


def normalise_unit(unit: str | None) -> str:
    """Lower case, trimmed, micro signs (U+00B5, U+03BC) as ``u``; ``[mg]`` / ``{tab}``
    brackets kept off for annotations by the callers that accept them."""
    return (unit or "").strip().lower().replace("\u00b5", "u").replace("\u03bc", "u")


def mass_factor(unit: str | None) -> float | None:
    """Milligrams per one of ``unit``; ``None`` when it is no mass unit."""
    return MASS_TO_MG.get(normalise_unit(unit))


def is_unit_dose(unit: str | None) -> bool:
    """A tablet, capsule or other single unit of the product (``{pill}``, ``TAB``...)."""
    return normalise_unit(unit).strip("{}") in UNIT_DOSE_WORDS


def volume_factor(unit: str | None) -> float | None:
    """Millilitres per one of ``unit``; ``None`` when it is no volume unit."""
    return VOLUME_TO_ML.get(normalise_unit(unit))


def period_days(unit: str | None) -> float | None:
    """Days per one of a time unit (``d``, ``wk``, ``h``...); ``None`` when unknown."""
    return PERIOD_DAYS.get(normalise_unit(unit))


LAB_UNITS: dict[str, dict[str, float]] = {
    "ferritin": {
        "ug/l": 1.0, "mcg/l": 1.0, "ng/ml": 1.0, "microgram/l": 1.0, "micrograms/l": 1.0,
        "nanogram/ml": 1.0, "nanograms/ml": 1.0, "mg/l": 1000.0,
    },
    "transferrin_saturation": {"%": 1.0, "percent": 1.0},
    "egfr": {
        "ml/min/{1.73_m2}": 1.0, "ml/min/1.73m2": 1.0, "ml/min/1.73m^2": 1.0,
        "ml/min/1.73m\u00b2": 1.0, "ml/min/{1.73m2}": 1.0, "ml/min/1.73sqm": 1.0,
        "ml/min/1.73_m2": 1.0, "ml/min": 1.0,
    },
}  # fmt: skip
"""Lab result units (lower case, micro signs as ``u``, spaces removed) -> the unit a
``lab`` fact holds: ferritin µg/L (ng/mL is the same), transferrin saturation %, eGFR
mL/min/1.73m2 (plain ``mL/min`` too: the LOINC eGFR codes are per 1.73 m2 by definition).
A unit not listed is not guessed: the value is not used."""


def lab_unit_factor(test: str, unit: str | None) -> float | None:
    """Multiplier from ``unit`` to the unit ``test``'s facts hold; ``None`` when unknown."""
    return LAB_UNITS.get(test, {}).get(normalise_unit(unit).replace(" ", ""))
