"""Cards issued and clinicians' feedback on them (#feedback), and the suppression loop.

Every card sent is recorded (card uuid, service, rule, rules version, hook instance,
time, a keyed pseudonym of the patient) by a writer thread, in batches, just after the
response leaves; feedback waits for this worker's pending writes, so it finds any card
this worker sent (feedback that reaches another replica before the write is retried for
a moment). The same card in the same hook instance keeps its uuid (``assign_card_uuids``):
order-select fires again on every change of the order, and an unchanged card is neither
new to the EHR nor a new row in the store. An override whose reason the card's template
marks as "already addressed" silences that rule for that patient for the template's period: the next
order-select for the same patient stays quiet, however often the order changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from cds.cards import RULE_EXTENSION
from cds.engine import Firing
from cds.errors import Problem, RequestError
from cds.feedback import (
    CardWriter,
    FeedbackRecord,
    FeedbackResult,
    FeedbackStore,
    IssuedCardRecord,
    PeriodicJob,
    PruneResult,
    Rows,
    SuppressionCache,
    UnknownCardError,
)
from cds.hooks.errors import StoreUnavailableError
from cds.hooks.explanation import compact_explanation
from cds.hooks.models import FeedbackItem, FeedbackRequest
from cds.hooks.pipeline import problems_from
from cds.observability import metrics
from cds.rulebase import RuleBase
from cds.settings import Settings

__all__ = [
    "CARD_UUID_NAMESPACE",
    "CardLedger",
    "LogLimiter",
    "assign_card_uuids",
    "feedback_records",
    "issued_records",
    "parse_feedback",
    "unknown_card_error",
]


log = logging.getLogger("cds.feedback")

_RECENT_CARDS = 4096
"""Card uuids a worker remembers as queued (repeats of one hook instance skip the queue)."""
_RECENT_SECONDS = 300.0
"""For how long at most; then a repeat is queued again (a no-op insert if the row is
there, a new row if retention pruned it meanwhile)."""

_UNKNOWN_CARD_PAUSES = (0.05, 0.1, 0.2, 0.4)
UNKNOWN_CARD_WAIT = sum(_UNKNOWN_CARD_PAUSES)
"""How long feedback naming an unknown card waits for a replica's pending write of it."""


_T = TypeVar("_T")


class CardLedger:
    """The feedback store as the hook path uses it: which rules are silenced for this
    patient (before the answer), the card records (after it).

    Suppressions come from a per-worker ``SuppressionCache`` (``suppression_ttl``); a
    miss reads the store in a worker thread, never on the event loop, within a short
    budget (``read_timeout``): past it, or on any database error, advice is shown anyway
    (fail open), the failure counted and logged. Card records go to one ``CardWriter``
    thread that writes them in batches; a card this worker recorded a moment ago is not
    queued again. Feedback, the explanation, the dashboard and shutdown first ``settle``
    the queue, so feedback on a card this worker just sent always finds it. A periodic job
    on the writer prunes what retention no longer keeps (``retention_days``; 0: never).
    """

    def __init__(
        self,
        store: FeedbackStore,
        *,
        read_timeout: float = 0.5,
        log_every: float = 10.0,
        suppression_ttl: float = 5.0,
        write_interval: float = 0.02,
        queue_size: int = 10_000,
        retention_days: float = 0.0,
        prune_interval: float = 3600.0,
    ) -> None:
        self.store = store
        self.read_timeout = read_timeout
        self.retention_days = retention_days
        self._limiter = LogLimiter(log_every)
        self._suppressions = SuppressionCache(suppression_ttl)
        self._recorded: OrderedDict[str, float] = OrderedDict()
        self._recent_for = (
            min(_RECENT_SECONDS, retention_days * 86_400 / 4)
            if retention_days > 0
            else _RECENT_SECONDS
        )
        self._recorded_stale = False
        job = PeriodicJob(prune_interval, self.prune) if retention_days > 0 else None
        self._writer = CardWriter(
            self._write_cards,
            on_drop=self._dropped,
            interval=write_interval,
            capacity=queue_size,
            job=job,
        )

    @classmethod
    def for_settings(cls, store: FeedbackStore, settings: Settings) -> CardLedger:
        return cls(
            store,
            read_timeout=settings.store_timeout_seconds,
            suppression_ttl=settings.suppression_cache_seconds,
            write_interval=settings.card_write_interval_seconds,
            queue_size=settings.card_write_queue_size,
            retention_days=settings.card_retention_days,
            prune_interval=settings.prune_interval_seconds,
        )

    async def silenced(self, pseudonym: str, now: dt.datetime) -> set[str]:
        rows = self._suppressions.get(pseudonym)
        if rows is None:
            rows = await self._read_suppressions(pseudonym)
        return {rule_id for rule_id, until in rows if until > now}

    async def _read_suppressions(self, pseudonym: str) -> Rows:
        started, epoch = time.monotonic(), self._suppressions.epoch
        try:
            async with asyncio.timeout(self.read_timeout):
                rows = await asyncio.to_thread(self.store.suppressions, pseudonym)
        except TimeoutError:
            self.failed("suppression-read", "timeout", "cards sent without suppression")
        except SQLAlchemyError as exc:
            self.failed("suppression-read", "error", "cards sent without suppression", exc)
        else:
            self._suppressions.put(pseudonym, rows, read_at=started, epoch=epoch)
            return tuple(rows)
        finally:
            metrics.observe_stage("store", time.monotonic() - started)
        return ()

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
        """Queue the records for the writer; a card uuid this worker queued recently (the
        same card in the same hook instance) is not queued again."""
        if self._recorded_stale:  # a batch was dropped: its cards may be queued again
            self._recorded.clear()
            self._recorded_stale = False
        now = time.monotonic()
        recent = now - self._recent_for
        fresh = [r for r in records if self._recorded.get(r.card_uuid, -math.inf) < recent]
        if not fresh or not self._writer.submit(fresh):
            return
        for record in fresh:
            self._recorded[record.card_uuid] = now
            self._recorded.move_to_end(record.card_uuid)
        while len(self._recorded) > _RECENT_CARDS:
            self._recorded.popitem(last=False)

    def _write_cards(self, records: Sequence[IssuedCardRecord]) -> None:
        self.store.record_cards(records)  # looked up per call: tests replace it

    def _dropped(self, reason: str, records: int, exc: BaseException | None) -> None:
        """The writer could not write ``records`` card records (any thread)."""
        self._recorded_stale = True
        metrics.count_card_records_dropped(reason, records)
        kind = "error" if reason.endswith("error") else reason
        self.failed(
            "card-write", kind, f"{records} card record(s) dropped: feedback on them refused", exc
        )

    async def settle(self) -> None:
        """Wait for every card record already sent to be written (or dropped)."""
        await self._writer.settle()

    def close(self, timeout: float = 10.0) -> None:
        """Write the queued records (within ``timeout``) and stop the writer thread."""
        self._writer.close(timeout)

    def prune(self) -> PruneResult:
        """Delete what retention no longer keeps (the writer runs this periodically)."""
        now = dt.datetime.now(dt.UTC)
        cutoff = now - dt.timedelta(days=self.retention_days)
        try:
            result = self.store.prune(cutoff, now)
        except SQLAlchemyError as exc:
            self.failed("prune", "error", "retried at the next interval", exc)
            return PruneResult()
        if result != PruneResult():
            log.info(
                "feedback store pruned",
                extra={
                    "cards": result.cards,
                    "feedback": result.feedback,
                    "suppressions": result.suppressions,
                    "token_uses": result.token_uses,
                },
            )
        return result

    async def add_feedback(
        self, service_id: str, records: list[FeedbackRecord], timeout: float
    ) -> FeedbackResult:
        """Store feedback within ``timeout`` (pending card writes included), or
        ``StoreUnavailableError``; ``UnknownCardError`` passes through."""
        try:
            async with asyncio.timeout(timeout):
                await self.settle()  # cards this worker just sent are in the store
                result = await self._add_waiting_for_cards(service_id, records)
        except TimeoutError:
            self.failed("feedback", "timeout", "answered 503")
            raise StoreUnavailableError from None
        except SQLAlchemyError as exc:
            self.failed("feedback", "error", "answered 503", exc)
            raise StoreUnavailableError from None
        self._suppressions.forget(result.patients)  # this worker sees its own at once
        return result

    async def read(self, operation: str, read: Callable[[], _T], timeout: float) -> _T:
        """``read()`` of the store for a read endpoint (a card's explanation, the
        dashboard), after the card writes pending now, within ``timeout``; else
        ``StoreUnavailableError`` (503), counted and logged: a locked or hanging database
        must not hold the request for the busy timeout and then fail it with a 500."""
        try:
            async with asyncio.timeout(timeout):
                await self.settle()
                return await asyncio.to_thread(read)
        except TimeoutError:
            self.failed(operation, "timeout", "answered 503")
            raise StoreUnavailableError from None
        except SQLAlchemyError as exc:
            self.failed(operation, "error", "answered 503", exc)
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


CARD_UUID_NAMESPACE = uuid.UUID("5a7f0c3e-2b1d-4e8a-9c61-0d3f8e2a4b17")
"""The UUIDv5 namespace of card uuids (fixed: changing it renames every future card)."""


def assign_card_uuids(
    cards: Sequence[dict[str, Any]],
    *,
    service_id: str,
    hook_instance: str,
    patient_pseudonym: str,
) -> None:
    """Give each card (in place) the uuid derived from what makes it the same card:
    service, hook instance, patient pseudonym and the card's content (rule and rules
    version included) without its uuids. Suggestion uuids follow from the card's.

    CDS Hooks lets a service return the same card again under the same uuid; doing so for
    repeated calls of one hook instance means the store keeps one row (the uuid is its
    primary key) and feedback on either answer names the same card, across workers and
    replicas. The patient pseudonym keeps two patients' cards apart even if a client
    reuses a hookInstance."""
    for card in cards:
        content = {k: v for k, v in card.items() if k != "uuid"}
        if content.get("suggestions"):
            content["suggestions"] = [
                {k: v for k, v in s.items() if k != "uuid"} for s in content["suggestions"]
            ]
        digest = hashlib.sha256(
            orjson.dumps(content, option=orjson.OPT_SORT_KEYS, default=str)
        ).hexdigest()
        key = "\x1f".join((service_id, hook_instance, patient_pseudonym, digest))
        card_uuid = uuid.uuid5(CARD_UUID_NAMESPACE, key)
        card["uuid"] = str(card_uuid)
        for index, suggestion in enumerate(card.get("suggestions") or ()):
            suggestion["uuid"] = str(uuid.uuid5(card_uuid, str(index)))


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
