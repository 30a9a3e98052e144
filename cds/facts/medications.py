"""MedicationRequest -> medication facts: which drug, which class, how much, since when.

``candidate_drugs`` looks at the raw JSON only (cheap) so that full FHIR validation is spent
on the orders the rules can use; ``medication_facts`` reads a validated R4B model.

Which orders count:
- the hook's ``context.draftOrders`` are the order being placed (``draft``), whatever
  status the EHR gives them, unless cancelled or entered in error;
- the chart's orders count when active, on hold, stopped or completed. An unsigned
  ``draft`` sitting in the chart is neither exposure nor the order being placed, and
  ``cancelled`` / ``entered-in-error`` never count, whatever the prefetch's filter did.

When the patient takes it from (``start_day``), first found wins:
1. the earliest ``dosageInstruction[].timing.repeat.boundsPeriod.start`` (when dosing
   starts, as the prescriber wrote it; a start before ``authoredOn`` is a drug recorded
   as taken since then);
2. ``dispenseRequest.validityPeriod.start`` (it cannot be taken before it is dispensed);
3. ``authoredOn``; a draft with none of these starts today.
A chart order whose start is after today is ``planned``: not taken yet, so not current.
One whose latest ``boundsPeriod.end`` (or validity end) is before today has stopped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cds.facts.dosage import concentration_mg_per_ml, daily_dose, strength_mg
from cds.facts.model import MedicationFact, epoch_day
from cds.facts.terminology import DrugMatch, Terminology

__all__ = [
    "COUNTED_STATUSES",
    "CURRENT_STATUSES",
    "PAST_STATUSES",
    "candidate_drugs",
    "medication_facts",
    "recognise",
]

CURRENT_STATUSES = frozenset({"active", "draft", "on-hold"})
"""Orders that expose the patient now or are about to (R4 medicationrequest-status)."""
PAST_STATUSES = frozenset({"stopped", "completed"})
"""Orders that exposed the patient; rules decide whether they ended too long ago."""
COUNTED_STATUSES = CURRENT_STATUSES | PAST_STATUSES
CHART_STATUSES = COUNTED_STATUSES - {"draft"}
"""Statuses of the chart's (prefetch) orders that count: not an unsigned draft."""

MedicationLookup = Callable[[str], Mapping[str, Any] | None]
"""Resolves a medicationReference (``#id`` or ``Medication/id``) to raw Medication JSON."""


def _raw_codes(concept: Mapping[str, Any] | None) -> tuple[list[tuple[Any, Any]], list[Any]]:
    if not isinstance(concept, Mapping):
        return [], []
    codings = [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]
    pairs = [(c.get("system"), c.get("code")) for c in codings]
    texts = [concept.get("text"), *(c.get("display") for c in codings)]
    return pairs, [t for t in texts if isinstance(t, str)]


def _raw_medication_concept(
    resource: Mapping[str, Any], lookup: MedicationLookup
) -> Mapping[str, Any] | None:
    if "medicationCodeableConcept" in resource:
        concept = resource["medicationCodeableConcept"]
        return concept if isinstance(concept, Mapping) else None
    reference = resource.get("medicationReference")
    if not isinstance(reference, Mapping) or not isinstance(reference.get("reference"), str):
        return None
    medication = lookup(reference["reference"])
    if medication is None:
        return {"text": reference.get("display")} if reference.get("display") else None
    code = medication.get("code")
    return code if isinstance(code, Mapping) else None


def recognise(
    resource: Mapping[str, Any], terminology: Terminology, lookup: MedicationLookup
) -> list[DrugMatch]:
    """Drugs a raw MedicationRequest names, codes first, then text."""
    pairs, texts = _raw_codes(_raw_medication_concept(resource, lookup))
    return terminology.match_codes(pairs) or terminology.match_text(texts)


def candidate_drugs(
    resource: Mapping[str, Any],
    terminology: Terminology,
    lookup: MedicationLookup,
    *,
    draft: bool = False,
) -> list[DrugMatch]:
    """The drugs of an order worth validating: in a counted status (``CURRENT_STATUSES``
    for the hook's draft orders, ``CHART_STATUSES`` for the chart's), known to our value
    sets. Empty means the order is skipped without FHIR validation."""
    if resource.get("status") not in (CURRENT_STATUSES if draft else CHART_STATUSES):
        return []
    return recognise(resource, terminology, lookup)


def medication_facts(
    order: Any,
    raw: Mapping[str, Any],
    matches: list[DrugMatch],
    lookup: MedicationLookup,
    *,
    draft: bool,
    today: dt.date,
    terminology: Terminology | None = None,
) -> Iterable[MedicationFact]:
    """One fact per recognised ingredient (``matches``) of a validated MedicationRequest;
    ``terminology`` supplies a product code's name when the order sends only the code."""
    pairs, texts = _raw_codes(_raw_medication_concept(raw, lookup))
    display = texts[0] if texts else match_names(matches)
    single = len(matches) == 1
    named = [*texts, *(terminology.product_displays(pairs) if terminology else [])]
    strength = next((s for t in named if (s := strength_mg(t)) is not None), None)
    per_ml = next((c for t in named if (c := concentration_mg_per_ml(t)) is not None), None)
    daily = daily_dose(order.dosageInstruction, strength, per_ml) if single else None
    today_day = epoch_day(today)
    start = _start_day(order)
    if start is None and draft:
        start = today_day
    end = _end_day(order)
    planned = not draft and start is not None and today_day is not None and start > today_day
    ended = not draft and _dosing_ended_before(order, today_day)
    current = draft or (order.status in CURRENT_STATUSES and not planned and not ended)
    for match in matches:
        yield MedicationFact(
            ingredient=match.drug.ingredient,
            drug_class=match.drug.drug_class,
            subclass=match.drug.subclass,
            provoking=match.drug.provoking,
            role=match.drug.role,
            status=order.status,
            draft=draft,
            current=current,
            planned=planned and order.status in CURRENT_STATUSES,
            recognised_by=match.recognised_by,
            display=display,
            source=f"MedicationRequest/{order.id}" if order.id else "MedicationRequest",
            mg_per_day=daily.mg_per_day if daily is not None else None,
            dose_as_ordered=daily.as_ordered if daily is not None else None,
            unit_strength_mg=strength if single else None,
            unit_concentration_mg_per_ml=per_ml if single else None,
            start_day=start,
            end_day=end if not (current or planned) else None,
        )


def _bounds(order: Any) -> list[Any]:
    """The dosing periods (``timing.repeat.boundsPeriod``) of an order's instructions."""
    periods = []
    for dosage in order.dosageInstruction or []:
        repeat = dosage.timing.repeat if dosage.timing is not None else None
        if repeat is not None and repeat.boundsPeriod is not None:
            periods.append(repeat.boundsPeriod)
    return periods


def _validity(order: Any) -> Any:
    request = order.dispenseRequest
    return request.validityPeriod if request is not None else None


def _start_day(order: Any) -> int | None:
    """When the patient takes it from, in the order of preference of the module doc."""
    starts = [d for p in _bounds(order) if (d := epoch_day(p.start)) is not None]
    if starts:
        return min(starts)
    validity = _validity(order)
    if validity is not None and (start := epoch_day(validity.start)) is not None:
        return start
    return epoch_day(order.authoredOn)


def _dosing_ended_before(order: Any, day: int | None) -> bool:
    """Every dosing period has an end and the last one is before ``day`` (an order whose
    dispensing validity ran out may still be taken from the supply at home)."""
    periods = _bounds(order)
    ends = [epoch_day(p.end) for p in periods]
    if day is None or not periods or None in ends:
        return False
    return max(e for e in ends if e is not None) < day


def _end_day(order: Any) -> int | None:
    """When dosing ends or ended: the latest dosing bound's end, else the validity
    period's end (an order may be dispensed for longer than it is taken, not shorter)."""
    ends = [d for p in _bounds(order) if (d := epoch_day(p.end)) is not None]
    if ends:
        return max(ends)
    validity = _validity(order)
    return epoch_day(validity.end) if validity is not None else None


def match_names(matches: list[DrugMatch]) -> str:
    return " / ".join(m.drug.ingredient for m in matches)
