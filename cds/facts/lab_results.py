"""The record's lab Observations -> ``lab`` facts, validating only the labs that are used.

Triage on raw JSON (a LOINC code of ``labs.tsv``, a counted status) and reading (date,
value, unit: ``cds.facts.labs``) are cheap; full FHIR validation is not, and only the
latest result of each test becomes a fact. So each test's readable results are taken
newest first and validated until one passes: a long-stay patient with hundreds of
ferritins pays for one validation, not hundreds. An older result is still used when the
newer ones are invalid (each of those is an input issue).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cds.errors import InputIssue
from cds.facts.cache import Outcome, RequestScope
from cds.facts.knowledge import Knowledge
from cds.facts.labs import LAB_PREFETCH_KEY, LabReading, is_lab_candidate, lab_facts, read_lab
from cds.facts.model import LabsReadFact
from cds.facts.validation import validate_observation

if TYPE_CHECKING:
    from cds.facts.extract import Extraction, PatientRecord

__all__ = ["extract_labs"]


@dataclass(frozen=True)
class _Candidate:
    """A usable reading of one Observation, with its cache key and what the cache holds."""

    position: int
    raw: Mapping[str, Any]
    reading: LabReading
    outcome: Outcome
    key: bytes | None


def extract_labs(
    record: PatientRecord,
    knowledge: Knowledge,
    today: dt.date,
    out: Extraction,
    cache: RequestScope | None = None,
) -> None:
    """Add the latest usable result of each test, and ``labs_read`` when the labs were
    looked for; a lab of ours that cannot be used is an input issue saying why. With a
    ``cache``, a lab of ours read (or validated) before is not read (or validated) again;
    triage stays per call, as it is cheaper than the cache key."""
    if LAB_PREFETCH_KEY in record.answered:
        out.facts.append(LabsReadFact())
    by_test: dict[str, list[_Candidate]] = {}
    for i, raw in enumerate(record.observations):
        where = f"prefetch Observation #{i}"
        try:
            test = knowledge.labs.test_of(raw) if is_lab_candidate(raw, knowledge.labs) else None
            if test is None:
                out.skipped += 1
                continue
            key = cache.key("observation", raw) if cache else None
            outcome = cache.lab(key) if cache else None
            if outcome is None:
                outcome = Outcome(lab=read_lab(raw, test, today))
                if cache:
                    cache.put(key, outcome)
        except (TypeError, AttributeError, ValueError):
            out.issues.append(InputIssue(where, "malformed, skipped"))
            continue
        reading = outcome.lab
        if reading is None or reading.problem is not None or reading.day is None:
            problem = reading.problem if reading else None
            out.issues.append(InputIssue(where, problem or "no date, not used"))
        else:
            candidate = _Candidate(i, raw, reading, outcome, key)
            by_test.setdefault(reading.test, []).append(candidate)
    used = [_latest_valid(candidates, out, cache) for candidates in by_test.values()]
    out.facts.extend(lab_facts([u for u in used if u is not None], today))


def _latest_valid(
    candidates: list[_Candidate], out: Extraction, cache: RequestScope | None
) -> tuple[LabReading, str] | None:
    """The newest candidate that passes FHIR validation (the first listed on a tie); a
    verdict the cache holds is not asked again."""
    ordered = sorted(candidates, key=lambda c: (-(c.reading.day or 0), c.position))
    for n, candidate in enumerate(ordered):
        judged = candidate.outcome
        if not judged.validated:
            where = f"prefetch Observation #{candidate.position}"
            _, issue = validate_observation(candidate.raw, where)
            message = issue.message if issue else None
            judged = dataclasses.replace(judged, validated=True, issue=message)
            if cache:
                cache.put(candidate.key, judged)
        out.validated += 1
        if judged.issue is None:
            out.skipped += len(ordered) - n - 1  # older results: read, not needed
            return candidate.reading, f"Observation/{candidate.raw.get('id', candidate.position)}"
        out.issues.append(InputIssue(f"prefetch Observation #{candidate.position}", judged.issue))
    return None
