"""How a dose suggestion rewrites a draft MedicationRequest: same product when the
arithmetic is exact, mg of the ingredient when it is not.

A draft dosed in mass units (mg, g, mcg) has every dose scaled. A draft dosed in units
of the product (tablets, capsules, ``{pill}``: the one unit table, ``cds.units``) or in
mL of a liquid keeps its product only when every scaled dose is a whole number of units
(or of ``ML_STEP`` mL): "1 tablet" of "venlafaxine 75 MG Oral Tablet", never "0.667
tablet". Half tablets count as whole only when the draft itself already orders half a
tablet of a plain tablet (the prescriber splits this product; RxNorm does not say which
tablets are scored, so the service never proposes a split on its own); capsules and
modified-release or orally disintegrating tablets are never split. Otherwise the
suggestion is written in mg of the product's ingredient (RxNorm ingredient code when the
value sets know it), and the product is left to the prescriber.

Every other element of the draft is kept (timing, route, reason, dates), except the
dosage free text, which states the old dose, and a dispense quantity the new dose no
longer matches. Elements that R4 defines as lists but a client sent as one object (the
CDS Hooks Sandbox sends ``category`` so) are wrapped, so the suggested resource is valid
FHIR R4 (http://hl7.org/fhir/R4/medicationrequest.html#resource).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from cds.cards.timing import how_often, less_than_daily
from cds.units import is_unit_dose, mass_factor, normalise_unit, volume_factor

__all__ = [
    "MAX_MG_PER_ML",
    "MAX_UNIT_STRENGTH_MG",
    "ML_STEP",
    "DraftProduct",
    "ScaledOrder",
    "scale_order",
]

MAX_UNIT_STRENGTH_MG = 10_000.0
"""No tablet or capsule holds more than 10 g: a larger strength is a data error."""

MAX_MG_PER_ML = 1_000.0
"""No liquid carries more than 1 g of drug per mL: a larger concentration is a data error."""

ML_STEP = 0.1
"""The finest volume an oral syringe measures (0.1 mL graduations): a liquid dose stays
in mL only when it is a whole number of these."""

UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

_R4_LISTS = frozenset(
    {"basedOn", "category", "contained", "detectedIssue", "dosageInstruction", "eventHistory",
     "extension", "identifier", "instantiatesCanonical", "instantiatesUri", "insurance",
     "modifierExtension", "note", "reasonCode", "reasonReference", "supportingInformation"}
)  # fmt: skip
"""MedicationRequest elements of cardinality 0..* in R4."""

_NOT_SPLIT = frozenset(
    {"capsule", "extended", "delayed", "sustained", "controlled", "modified", "release",
     "disintegrating", "sublingual", "buccal", "enteric", "chewable", "effervescent", "er",
     "xr", "xl", "sr", "cr", "dr", "ec", "odt", "hr", "la", "cd", "mr"}
)  # fmt: skip
"""Words of a product name that forbid splitting it (RxNorm's "24 HR ... Extended
Release Oral Tablet", "Disintegrating Oral Tablet"; common local abbreviations)."""

_WORDS = re.compile(r"[a-z]+")

Form = Literal["mass", "units", "ingredient-mg"]


@dataclass(frozen=True)
class DraftProduct:
    """What one unit of a draft's product holds, from the fact extraction (plain data:
    the cards layer reads no FHIR and no value sets)."""

    ingredient: str
    display: str
    strength_mg: float | None = None
    """mg in one tablet or capsule, when the product name states one strength."""
    mg_per_ml: float | None = None
    """mg per mL of a liquid, when the product name states one concentration."""
    ingredient_code: str | None = None
    """The ingredient's RxNorm code (value sets), for a suggestion written in mg."""

    @property
    def unit_mg(self) -> float | None:
        """``strength_mg`` when it is a real strength (finite, > 0, at most 10 g)."""
        return _plausible(self.strength_mg, MAX_UNIT_STRENGTH_MG)

    @property
    def ml_mg(self) -> float | None:
        """``mg_per_ml`` when it is a real concentration."""
        return _plausible(self.mg_per_ml, MAX_MG_PER_ML)

    def ingredient_concept(self) -> dict[str, Any]:
        concept: dict[str, Any] = {"text": self.ingredient}
        if self.ingredient_code:
            concept["coding"] = [
                {"system": RXNORM, "code": self.ingredient_code, "display": self.ingredient}
            ]
        return concept


def _plausible(value: float | None, most: float) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and 0 < value <= most else None


@dataclass(frozen=True)
class ScaledOrder:
    resource: dict[str, Any]
    form: Form
    per_dose: str | None
    """One administration in words ("1 tablet once a day", "104 mg every 4 weeks") when
    the order has a single dose, else ``None``."""
    unit_word: str | None = None
    """tablet, capsule, unit or mL: what the draft counted its doses in (if not mass)."""
    less_than_daily: bool = False
    """A single instruction given less often than daily ("every 4 weeks")."""


Kind = Literal["mass", "unit", "volume"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _kind(quantity: Mapping[str, Any]) -> Kind | None:
    """Which unit of the one table a dose quantity is in (its code, then its unit)."""
    for unit in _units(quantity):
        if mass_factor(unit) is not None:
            return "mass"
        if is_unit_dose(unit):
            return "unit"
        if volume_factor(unit) is not None:
            return "volume"
    return None


def _dose_quantities(dosages: list[Any]) -> Iterator[dict[str, Any]]:
    """Every dose of the instructions: doses, dose ranges, the as-needed maxima."""
    for dosage in dosages:
        if not isinstance(dosage, dict):
            continue
        maximum = dosage.get("maxDosePerPeriod") or {}
        found = [maximum.get("numerator"), dosage.get("maxDosePerAdministration")]
        for rate in dosage.get("doseAndRate") or []:
            dose_range = rate.get("doseRange") or {}
            found += [rate.get("doseQuantity"), dose_range.get("low"), dose_range.get("high")]
        yield from (q for q in found if isinstance(q, dict))


def _on_step(value: float, step: float, tolerance: float = 1e-9) -> float | None:
    """``value`` as a whole number of ``step`` (1 or 0.5 tablet, 0.1 mL) when it is one
    within the relative ``tolerance``, else ``None``."""
    count = round(value / step)
    if abs(value - count * step) > tolerance * abs(value) + 1e-9:
        return None
    return round(count * step, 3)


def _json_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


_CAPSULE_WORDS = frozenset({"capsule", "capsules", "cap", "caps"})
_TABLET_WORDS = frozenset({"tablet", "tablets", "tab", "tabs", "tbl", "tbls", "caplet", "caplets"})


def _unit_word(quantity: Mapping[str, Any], product: DraftProduct | None) -> str:
    """tablet or capsule, from the dose's unit, else from the product's name ({pill})."""
    names = {normalise_unit(u).strip("{}") for u in _units(quantity)}
    display = set(_WORDS.findall((product.display if product else "").lower()))
    for words in (names, display):
        if words & _CAPSULE_WORDS:
            return "capsule"
        if words & _TABLET_WORDS:
            return "tablet"
    return "unit"


def _units(quantity: Mapping[str, Any]) -> list[str]:
    return [u for u in (quantity.get("code"), quantity.get("unit")) if isinstance(u, str)]


def _halves_allowed(units: list[dict[str, Any]], product: DraftProduct) -> bool:
    """Half tablets only where the prescriber already splits a plain tablet."""
    name = set(_WORDS.findall(product.display.lower()))
    if "tablet" not in name or name & _NOT_SPLIT:
        return False
    if any(_unit_word(q, product) != "tablet" for q in units):
        return False
    return any(_on_step(v, 1.0) is None for q in units if (v := _number(q.get("value"))))


def scale_order(
    order: Mapping[str, Any],
    factor: float,
    product: DraftProduct | None,
    tolerance: float = 1e-9,
) -> ScaledOrder | None:
    """A copy of the draft with its doses multiplied by ``factor``; ``None`` when a dose
    is in a unit that cannot be rewritten (no strength, no concentration, unknown unit).

    ``tolerance`` is the relative error ``factor`` may carry (mg/day values are rounded
    to 3 decimals before they reach the cards): a count within it of a whole tablet is
    that tablet, and a mass within it of a whole mg is that mg (156 mg, not 155.99).
    """
    if not (math.isfinite(factor) and factor > 0):
        return None
    # a JSON round trip copies plain JSON data several times faster than copy.deepcopy
    dosages = orjson.loads(orjson.dumps(order.get("dosageInstruction")))
    updated = {**order, "dosageInstruction": dosages}
    quantities = list(_dose_quantities(dosages if isinstance(dosages, list) else []))
    kinds = [_kind(q) for q in quantities]
    if not quantities or None in kinds or any(_number(q.get("value")) is None for q in quantities):
        return None
    units = [q for q, k in zip(quantities, kinds, strict=True) if k == "unit"]
    volumes = [q for q, k in zip(quantities, kinds, strict=True) if k == "volume"]
    form: Form = "mass"
    counted: dict[int, float | None] = {}
    if units or volumes:
        if product is None or (units and product.unit_mg is None):
            return None
        if volumes and product.ml_mg is None:
            return None
        step = 0.5 if _halves_allowed(units, product) else 1.0
        counted = {id(q): _on_step(q["value"] * factor, step, tolerance) for q in units}
        counted |= {id(q): _on_step(q["value"] * factor, ML_STEP, tolerance) for q in volumes}
        form = "ingredient-mg" if None in counted.values() else "units"
    for quantity, kind in zip(quantities, kinds, strict=True):
        value = float(quantity["value"])
        if kind == "mass":
            new = _mass(value * factor, quantity, tolerance)
        elif form == "units":
            new = counted[id(quantity)] or 0.0
        else:
            new = round(value * _mg_per(quantity, kind, product) * factor, 3)
            quantity.clear()
            quantity.update({"value": new, "unit": "mg", "system": UCUM, "code": "mg"})
        if not math.isfinite(new) or new <= 0 < value:
            return None  # a dose that rounds to nothing is no suggestion
        quantity["value"] = _json_number(new)
    for dosage in dosages:
        if isinstance(dosage, dict):
            dosage.pop("text", None)
            dosage.pop("patientInstruction", None)
    if form == "ingredient-mg" and product is not None:
        _to_ingredient(updated, product)
    if form != "mass":
        _rescale_dispense(updated, factor if form == "units" else None, tolerance)
    word = _unit_word(units[0], product) if units else ("mL" if volumes else None)
    return ScaledOrder(
        _pruned(_as_r4_lists(updated)),
        form,
        _per_dose(dosages, word),
        word,
        less_than_daily(dosages),
    )


def _mass(value: float, quantity: Mapping[str, Any], tolerance: float) -> float:
    """A scaled mass, in the draft's unit, as a whole mg when it is one within
    ``tolerance``; else exact to 3 decimals (no re-rounding per dose)."""
    per_mg = 1 / (_factor(quantity, mass_factor) or 1.0)
    whole = _on_step(value, per_mg, tolerance)
    return whole if whole is not None else round(value, 3)


def _mg_per(quantity: Mapping[str, Any], kind: Kind | None, product: DraftProduct | None) -> float:
    """mg in one of ``quantity``'s unit: the strength, or the concentration times mL."""
    if product is None:
        return math.nan
    if kind == "unit":
        return product.unit_mg or math.nan
    return (product.ml_mg or math.nan) * (_factor(quantity, volume_factor) or math.nan)


def _factor(quantity: Mapping[str, Any], table: Callable[[str], float | None]) -> float | None:
    """The first of a quantity's code and unit that ``table`` knows, as its factor."""
    for unit in _units(quantity):
        factor = table(unit)
        if factor is not None:
            return factor
    return None


def _to_ingredient(order: dict[str, Any], product: DraftProduct) -> None:
    """Write the order for the ingredient, dropping a contained Medication that only the
    replaced ``medicationReference`` pointed at (FHIR dom-3)."""
    reference = order.pop("medicationReference", None)
    target = reference.get("reference") if isinstance(reference, dict) else None
    contained = order.get("contained")
    if isinstance(target, str) and target.startswith("#") and isinstance(contained, list):
        order["contained"] = [
            r for r in contained if not (isinstance(r, dict) and r.get("id") == target[1:])
        ]
    order["medicationCodeableConcept"] = product.ingredient_concept()


def _rescale_dispense(order: dict[str, Any], factor: float | None, tolerance: float) -> None:
    """A dispense quantity in units of the product follows the new dose when it stays a
    whole number of units; otherwise (or once the product is gone) it is dropped, as it
    would no longer last the supply duration it was written for."""
    request = order.get("dispenseRequest")
    if not isinstance(request, dict) or not isinstance(request.get("quantity"), dict):
        return
    request = order["dispenseRequest"] = dict(request)
    quantity = dict(request["quantity"])
    value = _number(quantity.get("value"))
    scaled = None
    if factor is not None and value is not None:
        scaled = _on_step(value * factor, 1.0, tolerance)
    if scaled is None or scaled <= 0:
        request.pop("quantity")
        return
    quantity["value"] = _json_number(scaled)
    request["quantity"] = quantity


def _as_r4_lists(order: dict[str, Any]) -> dict[str, Any]:
    return {k: [v] if k in _R4_LISTS and isinstance(v, dict) else v for k, v in order.items()}


def _per_dose(dosages: Any, unit_word: str | None) -> str | None:
    """The single dose of a single instruction in words ("2 tablets twice a day", "104 mg
    every 4 weeks"); ``None`` for anything more complex."""
    if not isinstance(dosages, list) or len(dosages) != 1 or not isinstance(dosages[0], dict):
        return None
    rates = dosages[0].get("doseAndRate") or []
    if len(rates) != 1 or not isinstance(rates[0].get("doseQuantity"), dict):
        return None
    quantity = rates[0]["doseQuantity"]
    value = _number(quantity.get("value"))
    often = how_often(dosages[0].get("timing"))
    if value is None or often is None:
        return None
    shown = f"{round(value, 2):g}"
    kind = _kind(quantity)
    if kind == "unit" and unit_word:
        amount = f"{shown} {unit_word}" + ("s" if value > 1 else "")
    elif kind == "volume":
        amount = f"{shown} mL"
    else:
        amount = f"{shown} {quantity.get('code') or quantity.get('unit')}"
    return f"{amount} {often}"


def _pruned(value: Any) -> Any:
    """JSON without null or empty elements (#use-of-json), as FHIR JSON requires too."""
    if isinstance(value, Mapping):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [p for p in (_pruned(v) for v in value) if p not in (None, "", [], {})]
    return value
