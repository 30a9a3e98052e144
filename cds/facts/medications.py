"""MedicationRequest -> medication facts: which drug, which class, how much, since when.

``candidate_drugs`` looks at the raw JSON only (cheap) so that full FHIR validation is spent
on the orders the rules can use; ``medication_facts`` reads a validated R4B model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cds.facts.dosage import mg_per_day, strength_mg
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
    resource: Mapping[str, Any], terminology: Terminology, lookup: MedicationLookup
) -> list[DrugMatch]:
    """The drugs of an order worth validating: in a counted status, known to our value
    sets. Empty means the order is skipped without FHIR validation."""
    if resource.get("status") not in COUNTED_STATUSES:
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
    daily = mg_per_day(order.dosageInstruction, strength) if single else None
    start = _start_day(order) or (epoch_day(today) if draft else None)
    for match in matches:
        yield MedicationFact(
            ingredient=match.drug.ingredient,
            drug_class=match.drug.drug_class,
            subclass=match.drug.subclass,
            provoking=match.drug.provoking,
            role=match.drug.role,
            status=order.status,
            draft=draft or order.status == "draft",
            current=order.status in CURRENT_STATUSES,
            recognised_by=match.recognised_by,
            display=display,
            source=f"MedicationRequest/{order.id}" if order.id else "MedicationRequest",
            mg_per_day=daily,
            start_day=start,
            end_day=_end_day(order),
        )


def _start_day(order: Any) -> int | None:
    if order.authoredOn is not None:
        return epoch_day(order.authoredOn)
    request = order.dispenseRequest
    if request is not None and request.validityPeriod is not None:
        return epoch_day(request.validityPeriod.start)
    return None


def _end_day(order: Any) -> int | None:
    """When a past order stopped: the validity period's end, else the dosing bounds'."""
    request = order.dispenseRequest
    if request is not None and request.validityPeriod is not None:
        end = epoch_day(request.validityPeriod.end)
        if end is not None:
            return end
    for dosage in order.dosageInstruction or []:
        repeat = dosage.timing.repeat if dosage.timing is not None else None
        if repeat is not None and repeat.boundsPeriod is not None:
            end = epoch_day(repeat.boundsPeriod.end)
            if end is not None:
                return end
    return None


def match_names(matches: list[DrugMatch]) -> str:
    return " / ".join(m.drug.ingredient for m in matches)
