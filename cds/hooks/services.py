"""The CDS services this server offers: one per hook, with prefetch templates.

Templates use only ``context.patientId`` (#prefetch-tokens), so any EHR can satisfy
them. ``required`` names the keys the rules cannot do without; a missing one is
fetched from the FHIR server when possible, else the call gets a 412.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from cds.hooks.models import (
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
    ServiceDefinition,
)

__all__ = ["PREFETCH", "SERVICES", "Service"]

PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "medications": (
        "MedicationRequest?patient={{context.patientId}}&status=active,on-hold,stopped,completed"
        "&_include=MedicationRequest:medication"
    ),
    "conditions": (
        "Condition?patient={{context.patientId}}&clinical-status=active,recurrence,relapse"
    ),
}
REQUIRED = ("medications", "conditions")


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    context_model: type[BaseModel]
    required: tuple[str, ...] = REQUIRED

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
                "Conditions (prefetch or FHIR server access)."
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
