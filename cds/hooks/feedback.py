"""Cards issued and clinicians' feedback on them (#feedback), and the suppression loop.

Every card sent is recorded (card uuid, service, rule, rules version, hook instance,
time, a keyed pseudonym of the patient) just after the response leaves; feedback waits
for this worker's pending writes, so it finds any card this worker sent (feedback that
reaches another worker within the few milliseconds of the write could still be refused).
An override whose reason the card's template marks as "already
addressed" silences that rule for that patient for the template's period: the next
order-select for the same patient stays quiet, however often the order changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from cds.cards import RULE_EXTENSION
from cds.engine import Firing
from cds.errors import Problem, RequestError
from cds.feedback import FeedbackRecord, FeedbackStore, IssuedCardRecord, UnknownCardError
from cds.hooks.explanation import compact_explanation
from cds.hooks.models import FeedbackItem, FeedbackRequest
from cds.hooks.pipeline import problems_from
from cds.rulebase import RuleBase

__all__ = [
    "CardLedger",
    "feedback_records",
    "issued_records",
    "parse_feedback",
    "unknown_card_error",
]


log = logging.getLogger("cds.feedback")


class CardLedger:
    """The feedback store as the hook path uses it: one quick read before the answer
    (which rules are silenced for this patient), the card records written just after.

    Writing after the response keeps the store off the clinician's wait; feedback and
    shutdown first ``settle`` pending writes, so no record is lost and feedback on a card
    this worker just sent always finds it. If the store cannot be read, advice is shown
    anyway (fail open) and the error logged.
    """

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store
        self._pending: set[asyncio.Task[None]] = set()

    def silenced(self, pseudonym: str, now: dt.datetime) -> set[str]:
        try:
            return self.store.suppressed_rules(pseudonym, now)
        except SQLAlchemyError:
            log.exception("feedback store unreadable; cards sent without suppression")
            return set()

    def record_soon(self, records: list[IssuedCardRecord]) -> None:
        task = asyncio.get_running_loop().create_task(self._write(records))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, records: list[IssuedCardRecord]) -> None:
        try:
            await asyncio.to_thread(self.store.record_cards, records)
        except SQLAlchemyError:
            log.exception(
                "could not record %d card(s); their feedback will be refused", len(records)
            )

    async def settle(self) -> None:
        """Wait for every card record already sent to be written."""
        while self._pending:
            await asyncio.gather(*list(self._pending))


def parse_feedback(body: bytes) -> FeedbackRequest:
    try:
        return FeedbackRequest.model_validate_json(body)
    except ValidationError as exc:
        raise RequestError(problems_from(exc)) from exc


def feedback_records(request: FeedbackRequest) -> list[FeedbackRecord]:
    """Wire feedback -> storable records; a user's comment text is never kept."""
    return [_record(item) for item in request.feedback]


def _record(item: FeedbackItem) -> FeedbackRecord:
    reason = item.overrideReason.reason if item.overrideReason else None
    return FeedbackRecord(
        card_uuid=item.card,
        outcome=item.outcome,
        outcome_timestamp=item.outcomeTimestamp.astimezone(dt.UTC),
        accepted_suggestions=tuple(s.id for s in item.acceptedSuggestions or ()),
        override_system=reason.system if reason else None,
        override_code=reason.code if reason else None,
        override_display=reason.display if reason else None,
        has_comment=bool(item.overrideReason and item.overrideReason.userComment),
    )


def unknown_card_error(request: FeedbackRequest, exc: UnknownCardError) -> RequestError:
    unknown = set(exc.card_uuids)
    problems = [
        Problem(f"feedback.{i}.card", "no card with this uuid was issued by this service")
        for i, item in enumerate(request.feedback)
        if item.card in unknown
    ]
    return RequestError(problems)


def issued_records(
    cards: Sequence[Mapping[str, Any]],
    *,
    service_id: str,
    hook_instance: str,
    patient_pseudonym: str,
    rulebase: RuleBase,
    now: dt.datetime,
    firings: Sequence[Firing] = (),
) -> list[IssuedCardRecord]:
    """What to remember of each card, with its rule's suppression policy and the compact
    explanation of why it fired."""
    records = []
    for card in cards:
        rule_id = card["extension"][RULE_EXTENSION]
        days, reasons = _suppression(rulebase, rule_id)
        records.append(
            IssuedCardRecord(
                card_uuid=card["uuid"],
                service_id=service_id,
                rule_id=rule_id,
                rules_version=rulebase.version,
                hook_instance=hook_instance,
                issued_at=now,
                patient_pseudonym=patient_pseudonym,
                suppress_days=days,
                suppress_reasons=reasons,
                explanation=compact_explanation(rule_id, rulebase.version, firings),
            )
        )
    return records


def _suppression(rulebase: RuleBase, rule_id: str) -> tuple[float | None, tuple[str, ...]]:
    compiled = rulebase.compiled
    rule = compiled.rules.get(rule_id)
    template = compiled.cards.get(rule.card_template or "") if rule else None
    spec = template.suppression if template else None
    if spec is None:
        return None, ()
    return float(spec.days), tuple(spec.override_reasons)  # days resolved by the compiler
