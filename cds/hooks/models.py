"""CDS Hooks 2.0 wire models: lenient inbound, strict outbound.

Inbound models ignore unknown fields and accept ``extension`` (#extensions); outbound
models forbid extras, enforce the card invariants (#card-attributes: summary under 140
characters, indicator info|warning|critical, source.label, suggestions with uuid and
described actions, selectionBehavior whenever there are suggestions, overrideReasons as
Codings with display) and serialise with ``exclude_none`` because JSON elements SHALL
NOT be null or empty (#use-of-json).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

__all__ = [
    "Action",
    "Card",
    "CardsResponse",
    "Coding",
    "DiscoveryResponse",
    "FeedbackItem",
    "FeedbackRequest",
    "FhirAuthorization",
    "HookRequest",
    "Link",
    "OrderSelectContext",
    "OrderSignContext",
    "PatientViewContext",
    "ServiceDefinition",
    "Source",
    "Suggestion",
]


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FhirAuthorization(_Inbound):
    access_token: str = Field(min_length=1)
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: str
    subject: str


class HookRequest(_Inbound):
    """The body of ``POST /cds-services/{id}`` (#http-request_1)."""

    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1, max_length=200)
    fhirServer: str | None = Field(default=None, max_length=2000)
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None


_ID = Field(min_length=1, max_length=200)


class PatientViewContext(_Inbound):
    userId: str = _ID
    patientId: str = _ID
    encounterId: str | None = Field(default=None, max_length=200)


class OrderSignContext(PatientViewContext):
    draftOrders: dict[str, Any]

    @field_validator("draftOrders")
    @classmethod
    def _bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("resourceType") != "Bundle":
            raise ValueError("draftOrders must be a FHIR Bundle")
        return value


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(min_length=1)


class AcceptedSuggestion(_Inbound):
    id: str = Field(min_length=1, max_length=200)


class InboundCoding(_Inbound):
    system: str | None = Field(default=None, max_length=500)
    code: str = Field(min_length=1, max_length=200)
    display: str | None = Field(default=None, max_length=500)


class OverrideReason(_Inbound):
    reason: InboundCoding | None = None
    userComment: str | None = Field(default=None, max_length=10_000)


class FeedbackItem(_Inbound):
    """One card's outcome (#feedback); ``outcomeTimestamp`` must carry its time zone."""

    card: str = Field(min_length=1, max_length=200)
    outcome: Literal["accepted", "overridden"]
    outcomeTimestamp: AwareDatetime
    acceptedSuggestions: list[AcceptedSuggestion] | None = Field(default=None, max_length=50)
    overrideReason: OverrideReason | None = None

    @field_validator("outcomeTimestamp")
    @classmethod
    def _not_in_the_future(cls, value: dt.datetime) -> dt.datetime:
        # a future time would stretch a suppression it creates
        if value > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5):
            raise ValueError("outcomeTimestamp is in the future")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome lists its acceptedSuggestions")
        if self.outcome == "accepted" and self.overrideReason is not None:
            raise ValueError("an accepted outcome has no overrideReason")
        if self.outcome == "overridden" and self.acceptedSuggestions:
            raise ValueError("an overridden outcome accepts no suggestions")
        return self


class FeedbackRequest(_Inbound):
    """``{"feedback": [...]}``; a bare feedback object is accepted too (some clients)."""

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _bare_object(cls, data: Any) -> Any:
        if isinstance(data, dict) and "feedback" not in data and "card" in data:
            return {"feedback": [data]}
        return data


# ---- outbound -------------------------------------------------------------------------


class Coding(_Outbound):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str = Field(min_length=1)


class Source(_Outbound):
    label: str = Field(min_length=1)
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Outbound):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _target(self) -> Action:
        if self.type in ("create", "update") and self.resource is None:
            raise ValueError(f"a {self.type} action carries a resource")
        return self


class Suggestion(_Outbound):
    label: str = Field(min_length=1)
    uuid: str = Field(min_length=1)
    isRecommended: bool | None = None
    actions: list[Action] = Field(min_length=1)


class Link(_Outbound):
    label: str = Field(min_length=1)
    url: str = Field(min_length=1)
    type: Literal["absolute", "smart"]
    appContext: str | None = None


class Card(_Outbound):
    uuid: str = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=139)
    detail: str | None = Field(default=None, min_length=1)
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = Field(default=None, min_length=1)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = Field(default=None, min_length=1)
    links: list[Link] | None = Field(default=None, min_length=1)
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _selection_behavior(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        return self


class CardsResponse(_Outbound):
    cards: list[Card]


class ServiceDefinition(_Outbound):
    hook: str
    title: str
    description: str
    id: str
    prefetch: dict[str, str]
    usageRequirements: str | None = None
    extension: dict[str, Any] | None = None


class DiscoveryResponse(_Outbound):
    services: list[ServiceDefinition]
