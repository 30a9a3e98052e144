"""CDS Hooks request data -> the raw FHIR resources of one patient, leniently.

Real clients differ (shared/conformance/README.md): draftOrders Bundles without
``type``, a prefetch key left out when its query failed, ``null`` for no data, or an
OperationOutcome for an error. A null key is satisfied with no data; an absent key or an
OperationOutcome means the data must come from elsewhere (the FHIR server) or the call
gets a 412. Resources stay raw JSON here: validation happens once, later, and only for
the resources the rules can use.

One patient only: a mis-scoped search, a proxy that merges results or an ``_include``
that reaches too far can put another patient's resources in a Bundle. A patient-scoped
resource is used only when its ``subject`` (or ``patient``) names ``context.patientId``;
see ``PatientRecord.skipped`` and the README's "How the record is read".

Language: a Condition's text is read with the phrase file of its own ``language``; one
without takes the ``language`` of the prefetch Bundle it came in, else the request's
(``Content-Language``), else the phrase files detect it (``cds/facts/phrases.py``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cds.errors import InputIssue, PrefetchUnavailableError

__all__ = [
    "InputIssue",
    "PatientRecord",
    "collect_record",
    "language_tag",
    "local_reference",
    "names_patient",
    "resources_in",
]

_PATIENT_SCOPED = frozenset({"MedicationRequest", "Condition", "Observation"})
"""The patient-scoped resource types ``_file`` keeps: a type added there is added here."""

_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
"""The shape of a BCP 47 language tag (FHIR ``code`` values such as ``es`` or ``es-MX``)."""


def language_tag(value: Any) -> str | None:
    """``value`` if it is shaped like a BCP 47 language tag, else None."""
    if isinstance(value, str) and len(value) <= 64 and _LANGUAGE_TAG.fullmatch(value):
        return value
    return None


@dataclass
class PatientRecord:
    """The raw resources the rules may read, grouped by what they mean."""

    draft_orders: list[Mapping[str, Any]] = field(default_factory=list)
    medication_requests: list[Mapping[str, Any]] = field(default_factory=list)
    conditions: list[Mapping[str, Any]] = field(default_factory=list)
    observations: list[Mapping[str, Any]] = field(default_factory=list)
    answered: set[str] = field(default_factory=set, compare=False)
    """Prefetch keys that answered (a resource, a Bundle, even empty, or ``null``) and
    were read in full: the data was looked for, so what is absent from it is absent from
    the record."""
    medications: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    issues: list[InputIssue] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    """Resources left out before reading, by reason (``other-patient``, ``no-subject``)."""

    def medication(self, reference: str) -> Mapping[str, Any] | None:
        """Resolve ``Medication/id`` (relative, absolute or versioned) from the request's
        data; only this patient's orders ever ask, so an ``_include``d Medication that no
        order of theirs names is never read."""
        local = local_reference(reference)
        return self.medications.get(local) if local is not None else None


def local_reference(reference: str) -> str | None:
    """``Type/id`` of a literal reference written any of the ways FHIR allows:
    ``Patient/1``, ``https://ehr/fhir/Patient/1``, a trailing slash, ``.../_history/3``."""
    parts = reference.strip().rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        return None
    return f"{parts[-2]}/{parts[-1]}"


def names_patient(subject: Any, patient_id: str) -> bool:
    """Whether a Reference names exactly ``Patient/<patient_id>`` (ids are case-sensitive)."""
    if not isinstance(subject, Mapping) or not isinstance(subject.get("reference"), str):
        return False
    return local_reference(subject["reference"]) == f"Patient/{patient_id}"


def _located(
    value: Any, where: str, issues: list[InputIssue]
) -> list[tuple[str, Mapping[str, Any]]]:
    """The resources in a Bundle (of any or no type) or a single resource, with where
    each one stands in the request."""
    if not isinstance(value, Mapping) or not isinstance(value.get("resourceType"), str):
        issues.append(InputIssue(where, "expected a FHIR resource or Bundle"))
        return []
    if value.get("resourceType") != "Bundle":
        return [(where, value)]
    found: list[tuple[str, Mapping[str, Any]]] = []
    entries = value.get("entry") or []
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        issues.append(InputIssue(f"{where}.entry", "expected a list"))
        return []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and isinstance(resource.get("resourceType"), str):
            found.append((f"{where}.entry[{i}]", resource))
        else:
            issues.append(InputIssue(f"{where}.entry[{i}]", "entry without a resource"))
    return found


def resources_in(value: Any, where: str, issues: list[InputIssue]) -> list[Mapping[str, Any]]:
    """The resources in a Bundle (of any or no type) or a single resource."""
    return [resource for _, resource in _located(value, where, issues)]


def _is_error(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome"


def collect_record(
    draft_orders: Any,
    prefetch: Mapping[str, Any] | None,
    required: Sequence[str],
    *,
    patient_id: str,
    language: str | None = None,
) -> PatientRecord:
    """Sort the request's resources of ``patient_id``; raise 412-worthy
    ``PrefetchUnavailableError`` naming each required key that is absent or came back
    as an OperationOutcome. ``language`` is the request's (``Content-Language``): the
    default for Conditions that state none and came in no Bundle that states one."""
    prefetch = prefetch or {}
    missing = [key for key in required if key not in prefetch or _is_error(prefetch[key])]
    if missing:
        raise PrefetchUnavailableError(missing)
    record = PatientRecord()
    if draft_orders is not None:
        for where, resource in _located(draft_orders, "context.draftOrders", record.issues):
            if _belongs(record, where, resource, patient_id, draft=True):
                _file(record, _with_subject(resource, patient_id), draft=True)
    for key, value in prefetch.items():
        if _is_error(value):
            continue
        if value is None:
            record.answered.add(key)
            continue
        default = _bundle_language(value) or language
        issues_before = len(record.issues)
        located = _located(value, f"prefetch.{key}", record.issues)
        # a value that is no resource or Bundle, or has an entry without a resource, may
        # have held what it seems to lack: it says nothing of absence ("no ferritin on
        # record"); another patient's resources skipped below are no gap in this one's
        if len(record.issues) == issues_before:
            record.answered.add(key)
        for where, resource in located:
            if _belongs(record, where, resource, patient_id, draft=False):
                _file(record, _with_language(resource, default), draft=False)
    return record


def _bundle_language(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("resourceType") == "Bundle":
        return language_tag(value.get("language"))
    return None


def _with_language(resource: Mapping[str, Any], default: str | None) -> Mapping[str, Any]:
    """A Condition that states no ``language`` of its own, read in ``default`` (a copy:
    the request's data is never changed; a language it does state, valid or not, stays)."""
    if default is None or resource["resourceType"] != "Condition" or "language" in resource:
        return resource
    return {**resource, "language": default}


def _belongs(
    record: PatientRecord, where: str, resource: Mapping[str, Any], patient_id: str, *, draft: bool
) -> bool:
    """Whether a resource may be read for this patient; a skipped one is noted by its
    position and type only (nothing of the other patient's data or ids).

    A draft order without a subject is the hook's own order for ``context.patientId``
    (clients often leave it out); a chart resource without one cannot be told apart
    from another patient's and is skipped."""
    kind = resource["resourceType"]
    if kind not in _PATIENT_SCOPED:
        return True
    subject = resource.get("subject", resource.get("patient"))
    if subject is None and draft:
        return True
    if names_patient(subject, patient_id):
        return True
    reason = "no-subject" if subject is None else "other-patient"
    message = (
        f"{kind} without a subject, skipped"
        if subject is None
        else f"{kind} of another patient (or an unresolvable subject), skipped"
    )
    record.skipped[reason] += 1
    record.issues.append(InputIssue(where, message))
    return False


def _with_subject(resource: Mapping[str, Any], patient_id: str) -> Mapping[str, Any]:
    """A hook's draft order as FHIR requires it (``subject`` is 1..1): the hook patient."""
    if resource["resourceType"] not in _PATIENT_SCOPED or "subject" in resource:
        return resource
    return {**resource, "subject": {"reference": f"Patient/{patient_id}"}}


def _file(record: PatientRecord, resource: Mapping[str, Any], *, draft: bool) -> None:
    kind = resource["resourceType"]
    if kind == "MedicationRequest":
        (record.draft_orders if draft else record.medication_requests).append(resource)
    elif kind == "Condition":
        record.conditions.append(resource)
    elif kind == "Observation" and not draft:
        record.observations.append(resource)
    elif kind == "Medication" and isinstance(resource.get("id"), str):
        record.medications[f"Medication/{resource['id']}"] = resource
