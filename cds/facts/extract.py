"""A patient's raw resources -> facts, validating only the resources the rules can use.

Each MedicationRequest and Condition is first triaged on its raw JSON (is it a drug our
value sets know, in a counted status? a current condition with a known code or a body
region?). Only candidates go through full fhir.resources validation, once; this keeps a
50-resource patient well under the cost of validating everything (see bench/).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cds.errors import InputIssue
from cds.facts.cache import Outcome, RecordingLookup, RequestScope
from cds.facts.conditions import TextBudget, condition_facts
from cds.facts.conditions import is_candidate as is_condition_candidate
from cds.facts.knowledge import Knowledge
from cds.facts.lab_results import extract_labs
from cds.facts.medications import candidate_drugs, medication_facts
from cds.facts.model import Fact
from cds.facts.terminology import Terminology
from cds.facts.validation import validate_condition, validate_medication_request

__all__ = ["Extraction", "PatientRecord", "extract_facts", "joined"]


class PatientRecord(Protocol):
    """What extraction reads of one patient's raw resources (``cds.fhir`` collects them
    from the hook request into a record of this shape)."""

    @property
    def draft_orders(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def medication_requests(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def conditions(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def issues(self) -> Sequence[InputIssue]:
        """Parts of the request already skipped while collecting."""

    @property
    def skipped(self) -> Mapping[str, int]:
        """Resources left out before reading, by reason."""

    @property
    def observations(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def answered(self) -> Collection[str]:
        """Prefetch keys the request (or the FHIR fallback) answered, even if empty."""

    def medication(self, reference: str) -> Mapping[str, Any] | None:
        """The request's Medication a reference names, if any."""


@dataclass
class Extraction:
    facts: list[Fact] = field(default_factory=list)
    issues: list[InputIssue] = field(default_factory=list)
    validated: int = 0
    skipped: int = 0
    """Resources read and found of no use to the rules (not validated)."""
    left_out: dict[str, int] = field(default_factory=dict)
    """Resources not read at all, by reason (another patient's, no subject)."""


def joined(first: Extraction, second: Extraction) -> Extraction:
    """Both readings as one (``first``'s facts and issues before ``second``'s)."""
    left_out = dict(first.left_out)
    for reason, count in second.left_out.items():
        left_out[reason] = left_out.get(reason, 0) + count
    return Extraction(
        facts=[*first.facts, *second.facts],
        issues=[*first.issues, *second.issues],
        validated=first.validated + second.validated,
        skipped=first.skipped + second.skipped,
        left_out=left_out,
    )


def extract_facts(
    record: PatientRecord,
    knowledge: Knowledge,
    today: dt.date,
    cache: RequestScope | None = None,
) -> Extraction:
    """All facts of one request; invalid resources are reported in ``issues`` and skipped.
    With a ``cache`` (``cds.facts.cache``), a resource read before is not read again."""
    out = Extraction(issues=list(record.issues), left_out=dict(record.skipped))
    terminology = knowledge.terminology
    orders = [(i, r, True) for i, r in enumerate(record.draft_orders)] + [
        (i, r, False) for i, r in enumerate(record.medication_requests)
    ]
    for i, raw, draft in orders:
        where = f"{'draftOrders' if draft else 'prefetch'} MedicationRequest #{i}"
        try:  # triage reads raw JSON: a wrong-typed element skips this resource only
            lookup = _medication_lookup(raw, record)
        except (TypeError, AttributeError):
            _add(out, Outcome(issue="malformed, skipped"), where)
            continue
        key = cache.key("draft" if draft else "order", raw) if cache else None
        outcome = cache.order(key, lookup) if cache else None
        if outcome is None:
            recording = RecordingLookup(lookup)
            outcome = _order_outcome(raw, recording, terminology, where, draft=draft, today=today)
            if cache and recording.complete:
                cache.put(key, dataclasses.replace(outcome, medications=tuple(recording.seen)))
        _add(out, outcome, where)
    budget = TextBudget()  # free text read across this request's Conditions
    for i, raw in enumerate(record.conditions):
        where = f"prefetch Condition #{i}"
        key = cache.key("condition", raw) if cache else None
        outcome = cache.condition(key, budget.remaining) if cache else None
        if outcome is not None:
            budget.remaining -= outcome.text_charged
        else:
            remaining, cut = budget.remaining, budget.cut
            outcome = _condition_outcome(raw, knowledge, budget, where)
            if cache and budget.cut == cut:  # a cut reading depends on the rest: not kept
                charged = remaining - budget.remaining
                cache.put(key, dataclasses.replace(outcome, text_charged=charged))
        _add(out, outcome, where)
    extract_labs(record, knowledge, today, out, cache)
    return out


def _order_outcome(
    raw: Mapping[str, Any],
    lookup: Any,
    terminology: Terminology,
    where: str,
    *,
    draft: bool,
    today: dt.date,
) -> Outcome:
    try:
        matches = candidate_drugs(raw, terminology, lookup, draft=draft)
    except (TypeError, AttributeError):
        return Outcome(issue="malformed, skipped")
    if not matches:
        return Outcome()
    order, issue = validate_medication_request(raw, where)
    if issue is not None:
        return Outcome(validated=True, issue=issue.message)
    facts = medication_facts(
        order, raw, matches, lookup, draft=draft, today=today, terminology=terminology
    )
    return Outcome(tuple(facts), validated=True)


def _condition_outcome(
    raw: Mapping[str, Any], knowledge: Knowledge, budget: TextBudget, where: str
) -> Outcome:
    try:
        candidate = is_condition_candidate(raw, knowledge.terminology, knowledge.phrases, budget)
    except (TypeError, AttributeError):
        return Outcome(issue="malformed, skipped")
    if not candidate:
        return Outcome()
    condition, issue = validate_condition(raw, where)
    if issue is not None:
        return Outcome(validated=True, issue=issue.message)
    facts = condition_facts(condition, raw, knowledge.terminology, knowledge.phrases)
    return Outcome(tuple(facts), validated=True)


def _add(out: Extraction, outcome: Outcome, where: str) -> None:
    if outcome.validated:
        out.validated += 1
    else:
        out.skipped += 1
    if outcome.issue is not None:
        out.issues.append(InputIssue(where, outcome.issue))
    out.facts.extend(outcome.facts)


def _medication_lookup(order: Mapping[str, Any], record: PatientRecord) -> Any:
    contained = {
        f"#{r['id']}": r
        for r in order.get("contained") or []
        if isinstance(r, Mapping) and r.get("resourceType") == "Medication" and "id" in r
    }

    def lookup(reference: str) -> Mapping[str, Any] | None:
        return contained.get(reference) or record.medication(reference)

    return lookup
