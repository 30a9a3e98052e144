"""Full FHIR R4 validation with fhir.resources' R4B models, one resource at a time.

The R4B models read R4 payloads (the package's default R5 models reject R4
MedicationRequests). Validation costs ~0.18 ms a resource here, so callers validate only
the resources the rules will read; one invalid resource becomes an ``InputIssue`` naming
its fields and is skipped, the rest of the request goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

from cds.fhir.records import InputIssue

__all__ = ["validate_condition", "validate_medication_request"]


def _validate(model: Any, raw: Mapping[str, Any], where: str) -> tuple[Any, InputIssue | None]:
    try:
        return model.model_validate(raw), None
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
