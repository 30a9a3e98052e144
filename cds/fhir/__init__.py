"""FHIR input: collect a patient's resources from the hook request or the FHIR server.

Reading them (which to validate, what facts they give) is ``cds.facts``' job.
"""

from cds.fhir.client import FetchPolicy, complete_prefetch, fetch_policy, keys_to_complete
from cds.fhir.recall import OptionalRecall
from cds.fhir.records import (
    InputIssue,
    PatientRecord,
    collect_record,
    language_tag,
    resources_in,
)

__all__ = [
    "FetchPolicy",
    "InputIssue",
    "OptionalRecall",
    "PatientRecord",
    "collect_record",
    "complete_prefetch",
    "fetch_policy",
    "keys_to_complete",
    "language_tag",
    "resources_in",
]
