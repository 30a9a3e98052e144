"""The record's lab Observations -> ``lab`` facts, validating only the value set's labs.

Triage on raw JSON (a LOINC code of ``labs.tsv``, a counted status), then full FHIR
validation of the candidates, as ``extract`` does for orders and conditions; the reading
itself (date, value, unit) is ``cds.facts.labs``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cds.facts import Knowledge
from cds.facts.labs import LAB_PREFETCH_KEY, is_lab_candidate, lab_facts, read_lab
from cds.facts.model import LabsReadFact
from cds.fhir.records import InputIssue, PatientRecord
from cds.fhir.validation import validate_observation

if TYPE_CHECKING:
    from cds.fhir.extract import Extraction

__all__ = ["extract_labs"]


def extract_labs(
    record: PatientRecord, knowledge: Knowledge, today: dt.date, out: Extraction
) -> None:
    """Add the latest usable result of each test, and ``labs_read`` when the labs were
    looked for; a lab that cannot be used is an input issue saying why."""
    if LAB_PREFETCH_KEY in record.answered:
        out.facts.append(LabsReadFact())
    readings = []
    for i, raw in enumerate(record.observations):
        where = f"prefetch Observation #{i}"
        try:
            candidate = is_lab_candidate(raw, knowledge.labs)
        except (TypeError, AttributeError):
            out.issues.append(InputIssue(where, "malformed, skipped"))
            continue
        if not candidate:
            out.skipped += 1
            continue
        _, issue = validate_observation(raw, where)
        out.validated += 1
        if issue is not None:
            out.issues.append(issue)
            continue
        test = knowledge.labs.test_of(raw)
        assert test is not None  # is_lab_candidate
        reading = read_lab(raw, test, today)
        if reading.problem is not None:
            out.issues.append(InputIssue(where, reading.problem))
            continue
        readings.append((reading, f"Observation/{raw.get('id', i)}"))
    out.facts.extend(lab_facts(readings, today))
