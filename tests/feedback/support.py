"""Builders for feedback tests: cards and feedback items with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cds.feedback import FeedbackRecord, IssuedCardRecord, pseudonymise

KEY = b"test-pseudonym-key-0123456789abcdef"
SERVICE = "restless-order-select"
RULE = "card.dose-review"
VERSION = "1.0+abc123"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ADDRESSED = "already-addressed"
NOT_RELEVANT = "not-relevant"


def patient(patient_id: str = "pt-1") -> str:
    return pseudonymise(KEY, patient_id)


def card(card_uuid: str, **fields: Any) -> IssuedCardRecord:
    values: dict[str, Any] = {
        "card_uuid": card_uuid,
        "service_id": SERVICE,
        "rule_id": RULE,
        "rules_version": VERSION,
        "hook_instance": "hook-" + card_uuid,
        "issued_at": T0,
        "patient_pseudonym": patient(),
        "suppress_days": 30.0,
        "suppress_reasons": (ADDRESSED,),
    }
    values.update(fields)
    return IssuedCardRecord(**values)


def overridden(card_uuid: str, code: str | None = ADDRESSED, **fields: Any) -> FeedbackRecord:
    values: dict[str, Any] = {
        "outcome_timestamp": T0,
        "override_system": "urn:restless-cds:override-reason",
        "override_code": code,
        "override_display": None if code is None else code.replace("-", " "),
    }
    values.update(fields)
    return FeedbackRecord(card_uuid, "overridden", **values)


def accepted(card_uuid: str, *suggestions: str, **fields: Any) -> FeedbackRecord:
    values: dict[str, Any] = {"outcome_timestamp": T0}
    values.update(fields)
    return FeedbackRecord(card_uuid, "accepted", accepted_suggestions=suggestions, **values)
