"""FHIR R4 JSON builders shared by the fact, FHIR and card tests.

Plain dicts, as a CDS client sends them; tests validate them with the R4B models
wherever the function under test takes models.
"""

from __future__ import annotations

from typing import Any

from cds.facts.terminology import ATC, ICD10CM, RXNORM, SNOMED

__all__ = [
    "ATC",
    "GTS",
    "ICD10CM",
    "RXNORM",
    "SNOMED",
    "UCUM",
    "condition",
    "dose",
    "medication_request",
    "quantity",
    "status",
]

UCUM = "http://unitsofmeasure.org"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
PATIENT = {"reference": "Patient/p1"}

Json = dict[str, Any]


def quantity(value: float, unit: str = "mg", *, code: str | None = "same") -> Json:
    """A Quantity; ``code`` defaults to the unit (UCUM), ``None`` leaves the code out."""
    out: Json = {"value": value, "unit": unit}
    if code is not None:
        out.update(system=UCUM, code=unit if code == "same" else code)
    return out


def dose(
    value: float,
    unit: str = "mg",
    *,
    per: tuple[float, float, str] | None = (1, 1, "d"),
    code: str | None = None,
    sequence: int | None = None,
    **extra: Any,
) -> Json:
    """One Dosage: ``value unit``, ``per=(frequency, period, periodUnit)`` or a timing ``code``."""
    out: Json = {"doseAndRate": [{"doseQuantity": quantity(value, unit)}], **extra}
    if code is not None:
        out["timing"] = {"code": {"coding": [{"system": GTS, "code": code}], "text": code}}
    elif per is not None:
        frequency, period, unit_of_time = per
        out["timing"] = {
            "repeat": {"frequency": frequency, "period": period, "periodUnit": unit_of_time}
        }
    if sequence is not None:
        out["sequence"] = sequence
    return out


def medication_request(
    *,
    id: str | None = "mr1",
    status: str = "active",
    concept: Json | None = None,
    codes: list[tuple[str, str]] | None = None,
    text: str | None = None,
    dosages: list[Json] | None = None,
    **extra: Any,
) -> Json:
    """A MedicationRequest naming its drug by codes and/or text (or ``concept``/extra)."""
    out: Json = {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "subject": PATIENT,
    }
    if id is not None:
        out["id"] = id
    if concept is None and (codes or text):
        concept = {}
        if codes:
            concept["coding"] = [{"system": s, "code": c} for s, c in codes]
        if text:
            concept["text"] = text
    if concept is not None:
        out["medicationCodeableConcept"] = concept
    if dosages is not None:
        out["dosageInstruction"] = dosages
    out.update(extra)
    return out


def status(system: str, code: str) -> Json:
    return {"coding": [{"system": system, "code": code}]}


def condition(
    *,
    id: str | None = "c1",
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    codes: list[tuple[str, str]] | None = None,
    text: str | None = None,
    notes: list[str] | None = None,
    **extra: Any,
) -> Json:
    """A Condition with the usual status codings; ``None`` leaves a status out."""
    out: Json = {"resourceType": "Condition", "subject": PATIENT}
    if id is not None:
        out["id"] = id
    if clinical is not None:
        out["clinicalStatus"] = status(CLINICAL, clinical)
    if verification is not None:
        out["verificationStatus"] = status(VERIFICATION, verification)
    if codes or text:
        code: Json = {}
        if codes:
            code["coding"] = [{"system": s, "code": c} for s, c in codes]
        if text:
            code["text"] = text
        out["code"] = code
    if notes:
        out["note"] = [{"text": n} for n in notes]
    out.update(extra)
    return out
