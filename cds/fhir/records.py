"""CDS Hooks request data -> the raw FHIR resources of one patient, leniently.

Real clients differ (shared/conformance/README.md): draftOrders Bundles without
``type``, a prefetch key left out when its query failed, ``null`` for no data, or an
OperationOutcome for an error. A null key is satisfied with no data; an absent key or an
OperationOutcome means the data must come from elsewhere (the FHIR server) or the call
gets a 412. Resources stay raw JSON here: validation happens once, later, and only for
the resources the rules can use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cds.errors import PrefetchUnavailableError

__all__ = ["InputIssue", "PatientRecord", "collect_record", "resources_in"]


@dataclass(frozen=True)
class InputIssue:
    """A part of the input that was skipped; says where, never what the data was."""

    where: str
    message: str


@dataclass
class PatientRecord:
    """The raw resources the rules may read, grouped by what they mean."""

    draft_orders: list[Mapping[str, Any]] = field(default_factory=list)
    medication_requests: list[Mapping[str, Any]] = field(default_factory=list)
    conditions: list[Mapping[str, Any]] = field(default_factory=list)
    medications: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    issues: list[InputIssue] = field(default_factory=list)

    def medication(self, reference: str) -> Mapping[str, Any] | None:
        """Resolve ``Medication/id`` from the request's data (contained refs are local)."""
        return self.medications.get(reference)


def resources_in(value: Any, where: str, issues: list[InputIssue]) -> list[Mapping[str, Any]]:
    """The resources in a Bundle (of any or no type) or a single resource."""
    if not isinstance(value, Mapping):
        issues.append(InputIssue(where, "expected a FHIR resource or Bundle"))
        return []
    if not isinstance(value.get("resourceType"), str):
        issues.append(InputIssue(where, "expected a FHIR resource or Bundle"))
        return []
    if value.get("resourceType") != "Bundle":
        return [value]
    found: list[Mapping[str, Any]] = []
    entries = value.get("entry") or []
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        issues.append(InputIssue(f"{where}.entry", "expected a list"))
        return []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and isinstance(resource.get("resourceType"), str):
            found.append(resource)
        else:
            issues.append(InputIssue(f"{where}.entry[{i}]", "entry without a resource"))
    return found


def _is_error(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome"


def collect_record(
    draft_orders: Any,
    prefetch: Mapping[str, Any] | None,
    required: Sequence[str],
) -> PatientRecord:
    """Sort the request's resources; raise 412-worthy ``PrefetchUnavailableError``
    naming each required key that is absent or came back as an OperationOutcome."""
    prefetch = prefetch or {}
    missing = [key for key in required if key not in prefetch or _is_error(prefetch[key])]
    if missing:
        raise PrefetchUnavailableError(missing)
    record = PatientRecord()
    if draft_orders is not None:
        for resource in resources_in(draft_orders, "context.draftOrders", record.issues):
            _file(record, resource, draft=True)
    for key, value in prefetch.items():
        if value is None or _is_error(value):
            continue
        for resource in resources_in(value, f"prefetch.{key}", record.issues):
            _file(record, resource, draft=False)
    return record


def _file(record: PatientRecord, resource: Mapping[str, Any], *, draft: bool) -> None:
    kind = resource["resourceType"]
    if kind == "MedicationRequest":
        (record.draft_orders if draft else record.medication_requests).append(resource)
    elif kind == "Condition":
        record.conditions.append(resource)
    elif kind == "Medication" and isinstance(resource.get("id"), str):
        record.medications[f"Medication/{resource['id']}"] = resource
