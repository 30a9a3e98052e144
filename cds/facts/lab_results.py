"""The record's lab Observations -> ``lab`` facts, validating only the labs that are used.

Triage on raw JSON (a LOINC code of ``labs.tsv``, a counted status) and reading (date,
value, unit: ``cds.facts.labs``) are cheap; full FHIR validation is not, and only the
latest result of each test becomes a fact. So each test's readable results are taken
newest first and validated until one passes: a long-stay patient with hundreds of
ferritins pays for one validation, not hundreds. An older result is still used when the
newer ones are invalid (each of those is an input issue).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cds.errors import InputIssue
from cds.facts.knowledge import Knowledge
from cds.facts.labs import LAB_PREFETCH_KEY, LabReading, is_lab_candidate, lab_facts, read_lab
from cds.facts.model import LabsReadFact
from cds.facts.validation import validate_observation

if TYPE_CHECKING:
    from cds.facts.extract import Extraction, PatientRecord

__all__ = ["extract_labs"]

_Candidate = tuple[int, int, Mapping[str, Any], LabReading]
"""(day, position in the record, raw Observation, its reading)."""


def extract_labs(
    record: PatientRecord, knowledge: Knowledge, today: dt.date, out: Extraction
) -> None:
    """Add the latest usable result of each test, and ``labs_read`` when the labs were
    looked for; a lab of ours that cannot be used is an input issue saying why."""
    if LAB_PREFETCH_KEY in record.answered:
        out.facts.append(LabsReadFact())
    by_test: dict[str, list[_Candidate]] = {}
    for i, raw in enumerate(record.observations):
        where = f"prefetch Observation #{i}"
        try:
            test = knowledge.labs.test_of(raw) if is_lab_candidate(raw, knowledge.labs) else None
            reading = read_lab(raw, test, today) if test is not None else None
        except (TypeError, AttributeError, ValueError):
            out.issues.append(InputIssue(where, "malformed, skipped"))
            continue
        if reading is None:
            out.skipped += 1
        elif reading.problem is not None or reading.day is None:
            out.issues.append(InputIssue(where, reading.problem or "no date, not used"))
        else:
            by_test.setdefault(reading.test, []).append((reading.day, i, raw, reading))
    used = [_latest_valid(candidates, out) for candidates in by_test.values()]
    out.facts.extend(lab_facts([u for u in used if u is not None], today))


def _latest_valid(candidates: list[_Candidate], out: Extraction) -> tuple[LabReading, str] | None:
    """The newest candidate that passes FHIR validation (the first listed on a tie)."""
    ordered = sorted(candidates, key=lambda c: (-c[0], c[1]))
    for n, (_, i, raw, reading) in enumerate(ordered):
        _, issue = validate_observation(raw, f"prefetch Observation #{i}")
        out.validated += 1
        if issue is None:
            out.skipped += len(ordered) - n - 1  # older results: read, not needed
            return reading, f"Observation/{raw.get('id', i)}"
        out.issues.append(issue)
    return None
