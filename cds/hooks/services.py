"""The CDS services this server offers: one per hook, with prefetch templates.

Templates use only ``context.patientId`` (#prefetch-tokens), so any EHR can satisfy
them. ``required`` names the keys the rules cannot do without; a missing one is
fetched from the FHIR server when possible, else the call gets a 412. ``optional`` keys
(the labs) are fetched when a FHIR server is at hand; when they cannot be, the cards
simply say less.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from cds.facts import LAB_PREFETCH_KEY
from cds.hooks.models import (
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
    ServiceDefinition,
)

__all__ = ["LAB_CODES", "OPTIONAL", "PREFETCH", "SERVICES", "Service"]

LAB_CODES = (
    "2276-4", "2502-3", "98979-8", "98980-6", "62238-1", "33914-3", "77147-7",
    "2106-3", "2112-1", "80385-8",
)  # fmt: skip
"""The LOINC codes of ``rules/valuesets/labs.tsv`` (a test keeps the two equal)."""

PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "medications": (
        "MedicationRequest?patient={{context.patientId}}&status=active,on-hold,stopped,completed"
        "&_include=MedicationRequest:medication"
    ),
    "conditions": (
        "Condition?patient={{context.patientId}}&clinical-status=active,recurrence,relapse"
    ),
    LAB_PREFETCH_KEY: (
        "Observation?patient={{context.patientId}}&status=final,amended,corrected&code="
        + ",".join(f"http://loinc.org|{code}" for code in LAB_CODES)
    ),
}
REQUIRED = ("medications", "conditions")
OPTIONAL = (LAB_PREFETCH_KEY,)


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    context_model: type[BaseModel]
    required: tuple[str, ...] = REQUIRED
    optional: tuple[str, ...] = OPTIONAL

    def definition(self, rules_version: str) -> ServiceDefinition:
        extension: dict[str, Any] = {"restless-cds-rules-version": rules_version}
        return ServiceDefinition(
            hook=self.hook,
            title=self.title,
            description=self.description,
            id=self.id,
            prefetch=dict(PREFETCH),
            usageRequirements=(
                "Advisory only. Needs the patient's active MedicationRequests and current "
                "Conditions (prefetch or FHIR server access); reads ferritin, transferrin "
                "saturation, eGFR and pregnancy tests (prefetch 'observations') when given."
            ),
            extension=extension,
        )


_SUMMARY = (
    "antipsychotic, antidepressant or other provoking-drug exposure together with a "
    "rest-provoked back or limb complaint (restless legs, arms or back)"
)

SERVICES: dict[str, Service] = {
    s.id: s
    for s in (
        Service(
            id="restless-order-select",
            hook="order-select",
            title="Drug-induced restless syndrome: order review",
            description=f"While a medication is being ordered, flags {_SUMMARY}, and "
            "suggests a dose review instead of escalation.",
            context_model=OrderSelectContext,
        ),
        Service(
            id="restless-order-sign",
            hook="order-sign",
            title="Drug-induced restless syndrome: order signing check",
            description=f"Before medication orders are signed, flags {_SUMMARY}.",
            context_model=OrderSignContext,
        ),
        Service(
            id="restless-patient-view",
            hook="patient-view",
            title="Drug-induced restless syndrome: chart review",
            description=f"When a chart is opened, flags {_SUMMARY}.",
            context_model=PatientViewContext,
        ),
    )
}
