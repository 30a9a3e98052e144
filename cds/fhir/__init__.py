"""FHIR input: collect a patient's resources from the hook request, validate them."""

from cds.fhir.records import InputIssue, PatientRecord, collect_record, resources_in
from cds.fhir.validation import validate_condition, validate_medication_request

__all__ = [
    "InputIssue",
    "PatientRecord",
    "collect_record",
    "resources_in",
    "validate_condition",
    "validate_medication_request",
]
