"""Fewer, equivalent facts before the engine: one exposure per drug episode, one complaint
per region, feature set and onset day.

durable-rules joins are cross products (DURABLE_RULES.md): a long-stay patient with 70
renewals of one drug and 70 notes of the same complaint derived 4,900 temporal links and
overflowed the session. Renewals are not new exposures, and a complaint written down again
is not a new complaint, so before the engine:

- a drug's non-draft orders at one daily dose whose periods overlap or follow each other
  (the next starts at most one day after the previous ends; an open order never ends)
  become one medication fact, except that two current orders stay apart (each may be
  the start the onset window runs from): the episode's first start, its last end (none while an
  order in it is current), current if any order in it is, and the status, ``source`` and
  ``display`` of its latest order (the one a card's "current dose" refers to). A change of
  dose starts a new episode, because the onset window also runs from a dose increase;
- orders the rules cannot place in time (no start day) are merged only when they are
  equal in every attribute the rules read;
- draft orders are never merged: each is the order a suggestion updates;
- complaints equal in region, every text feature and onset day become one, keeping the
  ``source`` and ``display`` of the first; findings equal in all but source likewise.

Every kept fact is one of the originals or carries an original's ``source``, so cards,
suggestions and explanations still point at real resources. Linear in the facts (one sort
per drug).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from itertools import groupby
from typing import TypeVar

from cds.facts.model import ComplaintFact, Fact, FindingFact, LabFact, LabsReadFact, MedicationFact

__all__ = ["aggregate_facts"]

_PROVENANCE = frozenset({"source", "display", "recognised_by"})
_NEVER = 10**9  # an open-ended order's end, for ordering and overlap only
_F = TypeVar("_F", MedicationFact, ComplaintFact, FindingFact)


def aggregate_facts(facts: Sequence[Fact]) -> list[Fact]:
    """The facts with renewals and repeats merged, each where its group's first member
    stood (the engine's firing order follows the facts' order, so it is kept)."""
    position = {id(fact): index for index, fact in enumerate(facts)}
    medications = [f for f in facts if isinstance(f, MedicationFact)]
    complaints = [f for f in facts if isinstance(f, ComplaintFact)]
    findings = [f for f in facts if isinstance(f, FindingFact)]
    kept: list[tuple[int, Fact]] = [
        *_medication_episodes(medications, position),
        *_distinct(complaints, position),
        *_distinct(findings, position),
        # labs are one fact per test already (cds.facts.labs keeps the latest)
        *((position[id(f)], f) for f in facts if isinstance(f, LabFact | LabsReadFact)),
    ]
    kept.sort(key=lambda item: item[0])
    return [fact for _, fact in kept]


def _rule_key(fact: Fact, *ignored: str) -> tuple[object, ...]:
    """The attributes the rules can read, without provenance (and ``ignored``)."""
    skip = _PROVENANCE | set(ignored)
    return tuple(getattr(fact, f.name) for f in dataclasses.fields(fact) if f.name not in skip)


def _distinct(facts: Iterable[_F], position: dict[int, int]) -> list[tuple[int, _F]]:
    """The first of each group of facts equal in every attribute but provenance."""
    kept: dict[tuple[object, ...], _F] = {}
    for fact in facts:
        kept.setdefault(_rule_key(fact), fact)
    return [(position[id(fact)], fact) for fact in kept.values()]


def _medication_episodes(
    facts: Sequence[MedicationFact], position: dict[int, int]
) -> list[tuple[int, MedicationFact]]:
    drafts = [(position[id(f)], f) for f in facts if f.draft]
    undated = _distinct((f for f in facts if not f.draft and f.start_day is None), position)
    dated = [
        f
        for _, f in _distinct(
            (f for f in facts if not f.draft and f.start_day is not None), position
        )
    ]

    def drug_and_dose(fact: MedicationFact) -> tuple[object, ...]:
        return (
            fact.ingredient,
            fact.drug_class,
            fact.subclass,
            fact.provoking,
            fact.mg_per_day is None,
            fact.mg_per_day or 0.0,
        )

    episodes: list[tuple[int, MedicationFact]] = []
    for _, group in groupby(
        sorted(dated, key=lambda f: (drug_and_dose(f), _span(f))), key=drug_and_dose
    ):
        for run in _runs(list(group)):
            episodes.append((min(position[id(o)] for o in run), _episode(run)))
    return [*drafts, *episodes, *undated]


def _span(fact: MedicationFact) -> tuple[int, int]:
    start = fact.start_day if fact.start_day is not None else 0
    if fact.current:
        return start, _NEVER
    return start, fact.end_day if fact.end_day is not None else start


def _runs(orders: list[MedicationFact]) -> list[list[MedicationFact]]:
    """Orders of one drug and dose, sorted by start, split into continuous runs."""
    runs: list[list[MedicationFact]] = []
    run_end = -_NEVER
    for order in orders:
        start, end = _span(order)
        second_current = order.current and any(o.current for o in runs[-1]) if runs else False
        if runs and start <= run_end + 1 and not second_current:
            runs[-1].append(order)
            run_end = max(run_end, end)
        else:
            runs.append([order])
            run_end = end
    return runs


def _episode(run: list[MedicationFact]) -> MedicationFact:
    if len(run) == 1:
        return run[0]
    current = [o for o in run if o.current]
    latest = max(current or run, key=_span)
    ends = [o.end_day for o in run if o.end_day is not None]
    return dataclasses.replace(
        latest,
        start_day=run[0].start_day,
        current=bool(current),
        end_day=None if current or not ends else max(ends),
    )
