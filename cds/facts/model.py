"""The base facts the rules match, as frozen dataclasses, and their engine schema.

Facts are flat (the engine truncates a fact with >255 properties silently) and carry
``source``, the ``ResourceType/id`` they came from, for explanations and suggestions.
Dates are whole days since 1970-01-01 so rules can compare and add to them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FACT_SCHEMA",
    "ComplaintFact",
    "Fact",
    "FindingFact",
    "LabFact",
    "LabsReadFact",
    "MedicationFact",
    "epoch_day",
    "to_engine",
]


@dataclass(frozen=True)
class MedicationFact:
    """A recognised drug in a MedicationRequest (one per ingredient): ``current`` for the
    order being placed (``draft``) or a chart order taken now (active or on hold, started,
    not past its dosing end); ``planned`` for a chart order that starts after today; else
    a past one (stopped, completed, or its dosing ended) with its dates."""

    ingredient: str
    drug_class: str
    subclass: str
    provoking: bool
    status: str
    draft: bool
    current: bool
    recognised_by: str
    display: str
    source: str
    mg_per_day: float | None = None
    start_day: int | None = None
    end_day: int | None = None
    planned: bool = False
    dose_as_ordered: str | None = None
    """The dose in the prescriber's own terms when it is not daily ("234 mg every 4 weeks")."""
    unit_strength_mg: float | None = None
    """mg in one tablet or capsule of the product, when its name says (for suggestions)."""
    unit_concentration_mg_per_ml: float | None = None
    """mg per mL of a liquid product, when its name says (for suggestions)."""
    role: str | None = None
    """provoking, not_provoking, treatment or uncertain (``drug_roles.tsv``)."""


@dataclass(frozen=True)
class ComplaintFact:
    """A back or limb complaint from a Condition, with the IRLSSG features its text shows."""

    region: str
    coded_restless: bool
    rest_provoked: bool
    relieved_by_movement: bool
    night_worse: bool
    unpleasant_sensation: bool
    urge_to_move: bool
    not_relieved_by_movement: bool
    inner_restlessness: bool
    skin_lesion: bool
    display: str
    source: str
    onset_day: int | None = None
    daytime_worse: bool = False
    mimic: str = "none"
    """The first mimic the text names (leg_cramps, venous_oedema, ...; ``rules/phrases``)."""
    possible_akathisia: bool = False
    """Akathisia written only as possible, queried or a differential ("r/o akathisia")."""


@dataclass(frozen=True)
class FindingFact:
    """Another coded condition that matters to the rules (akathisia, rash, a cause)."""

    category: str
    concept: str
    region: str
    display: str
    source: str
    onset_day: int | None = None
    possible: bool = False
    """verificationStatus provisional or differential: recorded as possible only."""


@dataclass(frozen=True)
class LabFact:
    """The latest usable result of one lab test (``cds.facts.labs``): ``value`` in ``unit``
    (µg/L, %, mL/min/1.73m2) or, for a pregnancy test, ``result`` positive/negative;
    ``reading`` is how a card shows it, with unit and date."""

    test: str
    unit: str
    day: int
    age_days: int
    reading: str
    source: str
    value: float | None = None
    result: str | None = None


@dataclass(frozen=True)
class LabsReadFact:
    """The record's labs were looked for (the ``observations`` prefetch answered, even
    with nothing): only then may a rule say a test is missing."""

    source: str = "prefetch.observations"


Fact = MedicationFact | ComplaintFact | FindingFact | LabFact | LabsReadFact

_FACT_TYPES: dict[type[Any], str] = {
    MedicationFact: "medication",
    ComplaintFact: "complaint",
    FindingFact: "finding",
    LabFact: "lab",
    LabsReadFact: "labs_read",
}


def _schema(cls: type[Any]) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    schema: dict[str, type] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if isinstance(hint, types.UnionType):
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        schema[field.name] = hint
    return schema


FACT_SCHEMA: dict[str, dict[str, type]] = {name: _schema(cls) for cls, name in _FACT_TYPES.items()}
"""Fact type -> attribute -> type, handed to the rule compiler for validation."""


_FIELD_NAMES = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _FACT_TYPES}


def to_engine(fact: Fact) -> dict[str, Any]:
    """The flat dict the engine asserts (``None`` attributes left out)."""
    cls = type(fact)
    data = {"fact": _FACT_TYPES[cls]}
    for name in _FIELD_NAMES[cls]:
        value = getattr(fact, name)
        if value is not None:
            data[name] = value
    return data


_EPOCH = dt.date(1970, 1, 1)


def epoch_day(value: dt.date | dt.datetime | str | None) -> int | None:
    """Days since 1970-01-01 of a FHIR date/dateTime (partial dates take their start)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = {4: value[:4] + "-01-01", 7: value[:7] + "-01"}.get(len(value), value[:10])
        try:
            value = dt.date.fromisoformat(text)
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        value = value.date()
    return (value - _EPOCH).days
