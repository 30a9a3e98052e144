"""FHIR input: collect a patient's resources from the hook request or the FHIR server.

Reading them (which to validate, what facts they give) is ``cds.facts``' job.
"""

from cds.fhir.records import InputIssue, PatientRecord, collect_record, resources_in

__all__ = ["InputIssue", "PatientRecord", "collect_record", "resources_in"]
