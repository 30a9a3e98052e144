"""The rule-file schema: what a rule author may write, validated with ``extra='forbid'``.

A rules directory holds ``config.yaml`` (thresholds and switches, referenced as
``config.<name>``) and rule files ``*.yaml``, one per clinical statement. A rule binds
facts by alias in ``when`` and either ``derive``\\s a new fact (forward chaining) or
raises a ``card``. Value syntax inside ``where`` and ``with`` is in ``expressions.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cds.cards import CardTemplate, EvidenceSource

__all__ = ["CardOutcome", "Condition", "ConfigFile", "Derive", "Rule", "RuleFile", "Then"]

NAME = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(_Strict):
    """Either ``fact: T`` with ``as: alias`` (a match) or ``absent: T`` (no such fact)."""

    fact: str | None = Field(default=None, pattern=NAME)
    absent: str | None = Field(default=None, pattern=NAME)
    alias: str | None = Field(default=None, alias="as", pattern=NAME)
    where: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        if (self.fact is None) == (self.absent is None):
            raise ValueError("a condition has exactly one of 'fact' or 'absent'")
        if self.fact is not None and self.alias is None:
            raise ValueError("a 'fact' condition needs 'as: <alias>' to name the match")
        if self.absent is not None and self.alias is not None:
            raise ValueError("an 'absent' condition binds nothing; remove 'as'")
        return self

    @property
    def fact_type(self) -> str:
        return self.fact or self.absent or ""


class Derive(_Strict):
    """Assert a new fact of type ``fact`` with attributes computed from the bindings."""

    fact: str = Field(pattern=NAME)
    values: dict[str, Any] = Field(alias="with", min_length=1)


class CardOutcome(_Strict):
    """Raise the card ``template`` with placeholder values computed from the bindings."""

    template: str = Field(pattern=NAME)
    values: dict[str, Any] = Field(alias="with", default_factory=dict)


class Then(_Strict):
    derive: Derive | None = None
    card: CardOutcome | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> Then:
        if (self.derive is None) == (self.card is None):
            raise ValueError("'then' has exactly one of 'derive' or 'card'")
        return self


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    title: str = Field(min_length=3)
    description: str | None = None
    priority: int = Field(default=50, ge=1, le=100, description="lower fires first")
    when: list[Condition] = Field(min_length=1)
    then: Then


class RuleFile(_Strict):
    """One clinical statement: its wording, evidence, rules and card templates."""

    statement: str = Field(min_length=10)
    sources: list[EvidenceSource] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    cards: dict[str, CardTemplate] = Field(default_factory=dict)


class ConfigFile(_Strict):
    """``config.yaml``: the rules' declared version and their tunable numbers."""

    version: str = Field(min_length=1)
    settings: dict[str, float | int | bool | str] = Field(default_factory=dict)
