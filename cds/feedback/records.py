"""The values that cross the store's boundary: cards issued, feedback received, the report.

They are plain frozen dataclasses so the HTTP layer and the command line build and read
them without knowing the database. Their checks run at construction: a naive datetime
would be stored as if it were UTC and silently shift a suppression by hours, so it is
refused here rather than guessed at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "OUTCOMES",
    "FeedbackRecord",
    "FeedbackResult",
    "IssuedCardRecord",
    "Outcome",
    "PruneResult",
    "ReportRow",
]

Outcome = Literal["accepted", "overridden"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "overridden")


def _require_aware(name: str, value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is an error, not local time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class IssuedCardRecord:
    """A card the service returned, as much of it as feedback and suppression need.

    ``patient_pseudonym`` comes from ``pseudonymise``: the patient id itself is never
    stored. ``suppress_days`` and ``suppress_reasons`` are the rule's policy at the time
    the card was issued, so a later rules edit does not change what earlier overrides mean.
    """

    card_uuid: str
    service_id: str
    rule_id: str
    rules_version: str
    hook_instance: str
    issued_at: datetime
    patient_pseudonym: str
    suppress_days: float | None
    """How long an override with one of ``suppress_reasons`` silences this rule for this
    patient; None: overrides never silence it."""
    suppress_reasons: tuple[str, ...]
    """Override reason codes that mean "already addressed"."""
    explanation: Mapping[str, Any] | None = None
    """The compact "why this card" (``cds.hooks.explanation``): codes, flags, numbers,
    dates only."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "issued_at", _require_aware("issued_at", self.issued_at))
        object.__setattr__(self, "suppress_reasons", tuple(self.suppress_reasons))
        if not self.card_uuid:
            raise ValueError("card_uuid must not be empty")
        if self.suppress_days is not None and not (
            math.isfinite(self.suppress_days) and self.suppress_days >= 0
        ):
            raise ValueError("suppress_days must be a finite number >= 0, or None")


@dataclass(frozen=True)
class FeedbackRecord:
    """One item of a CDS Hooks feedback call (CDS Hooks 2.0 #feedback).

    The clinician's ``userComment`` is reduced to ``has_comment``: free text may name the
    patient, and nothing here may.
    """

    card_uuid: str
    outcome: Outcome
    outcome_timestamp: datetime
    accepted_suggestions: tuple[str, ...] = ()
    """The uuids of the suggestions the clinician accepted."""
    override_system: str | None = None
    override_code: str | None = None
    override_display: str | None = None
    has_comment: bool = False

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        stamp = _require_aware("outcome_timestamp", self.outcome_timestamp)
        object.__setattr__(self, "outcome_timestamp", stamp)
        object.__setattr__(self, "accepted_suggestions", tuple(self.accepted_suggestions))


@dataclass(frozen=True)
class FeedbackResult:
    """What ``add_feedback`` did: items newly stored, and items it already had."""

    stored: int
    duplicates: int
    card_rules: Mapping[str, str] = field(default_factory=dict, compare=False)
    """The rule of each card the feedback named (for metrics)."""
    patients: frozenset[str] = field(default_factory=frozenset, compare=False)
    """The pseudonyms of the patients of those cards (whose suppressions may have
    changed: a worker's cache of them is refreshed)."""


@dataclass(frozen=True)
class PruneResult:
    """What one ``prune`` deleted."""

    cards: int = 0
    feedback: int = 0
    suppressions: int = 0
    """Expired ones."""
    token_uses: int = 0
    """Expired client JWT ids."""


@dataclass(frozen=True)
class ReportRow:
    """Feedback on the cards of one rule at one rules version.

    ``accepted`` and ``overridden`` count cards, not feedback items: an EHR that resends
    the same decision with a new timestamp is not a second decision.
    ``override_reasons`` counts overridden cards per reason code; an override without a
    reason is in ``overridden`` only.
    """

    rule_id: str
    rules_version: str
    issued: int
    accepted: int
    overridden: int
    override_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def acceptance_rate(self) -> float | None:
        """accepted / (accepted + overridden); None while there is no feedback."""
        answered = self.accepted + self.overridden
        return None if answered == 0 else self.accepted / answered
