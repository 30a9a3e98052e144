"""Full FHIR R4 validation with fhir.resources' R4B models, one resource at a time.

The R4B models read R4 payloads (the package's default R5 models reject R4
MedicationRequests). Validation costs ~0.18 ms a resource here, so callers validate only
the resources the rules will read, and only the elements the rules read (plus the ones
FHIR requires): narrative ``text``, ``meta``, identifiers and extensions of an EHR's
resource are neither read nor paid for. One invalid resource becomes an ``InputIssue``
naming its fields and is skipped; the rest of the request goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from cds.errors import InputIssue
from cds.facts.json_walk import MAX_DEPTH, first_hit

__all__ = ["validate_condition", "validate_medication_request", "validate_observation"]


_ONSET = ("onsetDateTime", "onsetAge", "onsetPeriod", "onsetRange", "onsetString")
_ABATEMENT = tuple(a.replace("onset", "abatement") for a in _ONSET)
_READ_ELEMENTS: dict[str, frozenset[str]] = {
    "MedicationRequest": frozenset(
        {"resourceType", "id", "status", "intent", "subject", "contained", "authoredOn",
         "medicationCodeableConcept", "medicationReference", "dispenseRequest",
         "dosageInstruction"}
    ),
    "Condition": frozenset(
        {"resourceType", "id", "clinicalStatus", "verificationStatus", "code", "bodySite",
         "subject", "recordedDate", "note", *_ONSET, *_ABATEMENT}
    ),
    "Observation": frozenset(
        {"resourceType", "id", "status", "code", "subject", "effectiveDateTime",
         "effectivePeriod", "effectiveInstant", "issued", "valueQuantity",
         "valueCodeableConcept", "valueString"}
    ),
}  # fmt: skip
_DATE_ELEMENTS = frozenset(
    {"authoredOn", "start", "end", "event", "onsetDateTime", "abatementDateTime",
     "recordedDate", "time", "effectiveDateTime", "issued"}
)  # fmt: skip
"""FHIR date, dateTime and instant elements the read resources can hold. pydantic reads a
number there as seconds since 1970; FHIR JSON allows only a string."""


def _number_as_date(key: str, value: Any) -> bool:
    """A date element holding something other than a string (or strings)."""
    if key not in _DATE_ELEMENTS:
        return False
    values = value if isinstance(value, list) else [value]
    return any(not isinstance(v, str) for v in values)


MAX_RESOURCE_DEPTH = 64
"""Objects and arrays a validated resource may nest. fhir.resources recurses about five
Python frames a level, so ~120 levels (within what the body parser takes) exhausted the
interpreter's stack: a RecursionError and a 500. Real resources nest about a dozen."""


def _too_deep(resource: Mapping[str, Any], limit: int = MAX_RESOURCE_DEPTH) -> str | None:
    """The top-level element under which nesting passes ``limit``; iterative, linear."""
    stack: list[tuple[str, Any, int]] = [(k, v, 1) for k, v in resource.items()]
    while stack:
        top, item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return top
        stack.extend((top, child, depth + 1) for child in children)
    return None


def _validate(model: Any, raw: Mapping[str, Any], where: str) -> tuple[Any, InputIssue | None]:
    read = _READ_ELEMENTS[raw["resourceType"]]
    if raw.get("modifierExtension"):
        kind = raw.get("resourceType")
        return None, InputIssue(where, f"invalid {kind}, skipped: modifierExtension not supported")
    kept = {k: v for k, v in raw.items() if k in read}
    if (element := _too_deep(kept)) is not None:
        kind = raw.get("resourceType")
        message = f"invalid {kind}, skipped: {element} nested over {MAX_RESOURCE_DEPTH} levels"
        return None, InputIssue(where, message)
    if (hit := first_hit(kept, _number_as_date)) is not None:
        kind = raw.get("resourceType")
        why = f"nested over {MAX_DEPTH} levels" if hit.too_deep else "a date must be a string"
        return None, InputIssue(where, f"invalid {kind}, skipped: {hit.path} ({why})")
    try:
        return model.model_validate(kept), None
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "(resource)" for e in exc.errors()})
        message = f"invalid {raw.get('resourceType')}, skipped: " + ", ".join(fields[:5])
        return None, InputIssue(where, message)


def validate_medication_request(
    raw: Mapping[str, Any], where: str
) -> tuple[Any, InputIssue | None]:
    return _validate(MedicationRequest, raw, where)


def validate_condition(raw: Mapping[str, Any], where: str) -> tuple[Any, InputIssue | None]:
    return _validate(Condition, raw, where)


def validate_observation(raw: Mapping[str, Any], where: str) -> tuple[Any, InputIssue | None]:
    return _validate(Observation, raw, where)
