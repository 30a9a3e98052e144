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
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from cds.cards import RULE_EXTENSION
from cds.engine import Firing
from cds.errors import Problem, RequestError
from cds.feedback import (
    FeedbackRecord,
    FeedbackResult,
    FeedbackStore,
    IssuedCardRecord,
    UnknownCardError,
)
from cds.hooks.errors import StoreUnavailableError
from cds.hooks.explanation import compact_explanation
from cds.hooks.models import FeedbackItem, FeedbackRequest
from cds.hooks.pipeline import problems_from
from cds.observability import metrics
from cds.rulebase import RuleBase

__all__ = [
    "CardLedger",
    "LogLimiter",
    "feedback_records",
    "issued_records",
    "parse_feedback",
    "unknown_card_error",
]


log = logging.getLogger("cds.feedback")

_UNKNOWN_CARD_PAUSES = (0.05, 0.1, 0.2, 0.4)
UNKNOWN_CARD_WAIT = sum(_UNKNOWN_CARD_PAUSES)
"""How long feedback naming an unknown card waits for a replica's pending write of it."""


class CardLedger:
    """The feedback store as the hook path uses it: one quick read before the answer
    (which rules are silenced for this patient), the card records written just after.

    Every store call runs in a worker thread, never on the event loop, so a slow
    database stalls no other request. The suppression read has a short budget
    (``read_timeout``): past it, or on any database error, advice is shown anyway (fail
    open), the failure counted and logged. Writing after the response keeps the store off
    the clinician's wait; feedback and shutdown first ``settle`` pending writes, so no
    record is lost and feedback on a card this worker just sent always finds it.
    """

    def __init__(
        self, store: FeedbackStore, *, read_timeout: float = 0.5, log_every: float = 10.0
    ) -> None:
        self.store = store
        self.read_timeout = read_timeout
        self._pending: set[asyncio.Task[None]] = set()
        self._limiter = LogLimiter(log_every)

    async def silenced(self, pseudonym: str, now: dt.datetime) -> set[str]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.read_timeout):
                return await asyncio.to_thread(self.store.suppressed_rules, pseudonym, now)
        except TimeoutError:
            self.failed("suppression-read", "timeout", "cards sent without suppression")
        except SQLAlchemyError as exc:
            self.failed("suppression-read", "error", "cards sent without suppression", exc)
        finally:
            metrics.observe_stage("store", time.perf_counter() - started)
        return set()

    def failed(
        self, operation: str, kind: str, consequence: str, exc: BaseException | None = None
    ) -> None:
        """Count a store failure; log it, at most one line per interval and operation."""
        metrics.count_store_failure(operation, kind)
        if self._limiter.allow(operation):
            detail = f": {type(exc).__name__}" if exc is not None else ""
            log.error(
                "feedback store %s %s%s; %s",
                operation,
                "timed out" if kind == "timeout" else "failed",
                detail,
                consequence,
                extra={"operation": operation, "kind": kind},
            )

    async def first_token_use(self, issuer: str, jti: str, expires_at: dt.datetime) -> bool:
        """Whether no worker or replica has seen this token id; when the store cannot
        tell in time, True (the verifier's per-process cache still refused replays to this
        worker), counted and logged: a database outage does not stop clinical advice."""
        try:
            async with asyncio.timeout(self.read_timeout):
                return await asyncio.to_thread(self.store.first_token_use, issuer, jti, expires_at)
        except TimeoutError:
            self.failed("token-replay", "timeout", "replays checked in this worker only")
        except SQLAlchemyError as exc:
            self.failed("token-replay", "error", "replays checked in this worker only", exc)
        return True

    def record_soon(self, records: list[IssuedCardRecord]) -> None:
        task = asyncio.get_running_loop().create_task(self._write(records))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, records: list[IssuedCardRecord]) -> None:
        try:
            await asyncio.to_thread(self.store.record_cards, records)
        except SQLAlchemyError as exc:
            self.failed("card-write", "error", "feedback on these cards will be refused", exc)

    async def settle(self) -> None:
        """Wait for every card record already sent to be written."""
        while self._pending:
            await asyncio.gather(*list(self._pending))

    async def add_feedback(
        self, service_id: str, records: list[FeedbackRecord], timeout: float
    ) -> FeedbackResult:
        """Store feedback within ``timeout`` (pending card writes included), or
        ``StoreUnavailableError``; ``UnknownCardError`` passes through."""
        try:
            async with asyncio.timeout(timeout):
                await self.settle()  # cards this worker just sent are in the store
                return await self._add_waiting_for_cards(service_id, records)
        except TimeoutError:
            self.failed("feedback", "timeout", "answered 503")
            raise StoreUnavailableError from None
        except SQLAlchemyError as exc:
            self.failed("feedback", "error", "answered 503", exc)
            raise StoreUnavailableError from None

    async def _add_waiting_for_cards(
        self, service_id: str, records: list[FeedbackRecord]
    ) -> FeedbackResult:
        """Another replica may have sent the card a moment ago and still be writing its
        record: retry unknown cards for up to ``UNKNOWN_CARD_WAIT`` seconds."""
        for pause in (*_UNKNOWN_CARD_PAUSES, None):
            try:
                return await asyncio.to_thread(self.store.add_feedback, service_id, records)
            except UnknownCardError:
                if pause is None:
                    raise
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover


class LogLimiter:
    """At most one log line per key and interval: a database outage under load gives a
    line every few seconds, not one per request."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -self.interval) < self.interval:
            return False
        self._last[key] = now
        return True


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
