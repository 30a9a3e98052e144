"""``FeedbackStore``: cards issued, feedback received and the suppressions they create.

One store per process, shared by its threads (SQLAlchemy's pool is thread-safe). Each
public method is one transaction. Correctness under concurrent workers rests on the
database, not on this process: a feedback item's content hash is a unique key, inserted
with ``ON CONFLICT DO NOTHING``, so the same item sent to two workers at once is stored
once; a suppression is an upsert that only ever moves ``until`` later.

SQLite serves one machine: WAL mode lets readers (the hook's suppression check) run while a
writer commits, ``synchronous=NORMAL`` commits without an fsync per transaction (a power
cut may lose the last commits, never corrupt the file), and write transactions start with
``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of one failing when
it upgrades a read lock. PostgreSQL serves several machines.

Methods block: call them from a worker thread (``asyncio.to_thread``), not the event loop.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    exists,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from cds.feedback.errors import UnknownCardError
from cds.feedback.migrate import at_head, upgrade_to_head
from cds.feedback.models import Feedback, IssuedCard, Suppression, TokenUse
from cds.feedback.records import (
    FeedbackRecord,
    FeedbackResult,
    IssuedCardRecord,
    PruneResult,
    ReportRow,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

__all__ = [
    "PG_CONNECT_TIMEOUT_S",
    "PG_STATEMENT_TIMEOUT_MS",
    "SQLITE_BUSY_TIMEOUT_MS",
    "FeedbackStore",
    "content_hash",
]

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for another to commit before giving up."""

PG_CONNECT_TIMEOUT_S = 5
"""How long to wait for PostgreSQL to accept a connection (unless the URL says)."""

PG_STATEMENT_TIMEOUT_MS = 5_000
"""PostgreSQL cancels a statement (lock waits included) after this: a hung database
frees the store's threads instead of holding them for ever."""
PG_POOL_TIMEOUT_S = 2
"""How long to wait for a free pooled connection before failing."""
_EXPIRED_PER_CALL = 20

_READ_ONLY = "cds_feedback_read_only"
"""Execution option: this transaction only reads (SQLite: ``BEGIN``, not ``BEGIN IMMEDIATE``)."""

_LATEST = datetime.max.replace(tzinfo=UTC)

PRUNE_BATCH = 1000
"""Cards deleted per prune transaction: a SQLite write lock is held for one batch only."""

_PRUNE_LOCK_KEY = 0x63647370_72756E65  # "cdsprune": one PostgreSQL pruner at a time
_SUPPRESSIONS_OF = select(Suppression.rule_id, Suppression.until).where(
    Suppression.patient_pseudonym == bindparam("patient")
)
"""Built once: the hook path's only read (its compiled form is cached by the engine)."""


def content_hash(item: FeedbackRecord) -> str:
    """What makes two feedback items the same: card, outcome, its time, the suggestions
    accepted (in any order) and the override code. Display text and the comment flag are
    left out: a resent item does not become new because an EHR re-rendered a label."""
    canonical = json.dumps(
        [
            item.card_uuid,
            item.outcome,
            item.outcome_timestamp.astimezone(UTC).isoformat(timespec="microseconds"),
            sorted(set(item.accepted_suggestions)),
            item.override_code,
        ],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class _Card:
    """What ``add_feedback`` needs of an issued card."""

    service_id: str
    rule_id: str
    patient_pseudonym: str
    suppress_days: float | None
    suppress_reasons: frozenset[str]


def _require_aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _suppression_end(start: datetime, days: float) -> datetime:
    try:
        return start + timedelta(days=days)
    except OverflowError:
        return _LATEST


class FeedbackStore:
    """The feedback database at ``url``, migrated to the newest schema when opened.

    ``url`` is a SQLAlchemy URL: ``sqlite:///path/to/feedback.db`` (parent folders are
    created) or ``postgresql+psycopg://user:pass@host/db`` (plain ``postgresql://`` means
    psycopg 3 too).
    """

    def __init__(self, url: str) -> None:
        self._engine = _create_engine(url)
        self._dialect = self._engine.dialect.name
        self._write_lock = threading.Lock()
        try:
            with self._read() as connection:  # one read when at head: no Alembic import
                current = at_head(connection)
            if not current:
                upgrade_to_head(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def engine(self) -> Engine:
        """The store's engine, for tests and maintenance (not for the request path)."""
        return self._engine

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection; the store is unusable afterwards."""
        self._engine.dispose()

    def ping(self) -> None:
        """One round trip to the database (readiness); raises if it cannot be reached."""
        with self._engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def record_cards(self, cards: Sequence[IssuedCardRecord]) -> None:
        """Remember cards as issued, in one transaction; a card uuid already known is kept
        as first recorded."""
        if not cards:
            return
        rows = [
            {
                "card_uuid": card.card_uuid,
                "service_id": card.service_id,
                "rule_id": card.rule_id,
                "rules_version": card.rules_version,
                "hook_instance": card.hook_instance,
                "issued_at": card.issued_at,
                "patient_pseudonym": card.patient_pseudonym,
                "suppress_days": card.suppress_days,
                "suppress_reasons": list(card.suppress_reasons),
                "explanation": dict(card.explanation) if card.explanation else None,
            }
            for card in sorted(cards, key=lambda c: c.card_uuid)
        ]
        statement = self._insert(IssuedCard).on_conflict_do_nothing(index_elements=["card_uuid"])
        with self._write(one_statement=len(rows) == 1) as connection:
            connection.execute(statement, rows)

    def add_feedback(self, service_id: str, items: Sequence[FeedbackRecord]) -> FeedbackResult:
        """Store a feedback call's items, all or none.

        Raises ``UnknownCardError`` (storing nothing) when any item names a card that
        ``service_id`` did not issue. An item stored before, by this or another worker,
        counts as a duplicate. A stored override whose reason is one of its card's
        ``suppress_reasons`` silences the card's rule for the card's patient until
        ``outcome_timestamp + suppress_days``, or later if already silenced longer.
        """
        if not items:
            return FeedbackResult(stored=0, duplicates=0)
        received_at = datetime.now(UTC)
        with self._write() as connection:
            cards = self._cards(connection, {item.card_uuid for item in items})
            unknown = [
                uuid
                for uuid in dict.fromkeys(item.card_uuid for item in items)
                if uuid not in cards or cards[uuid].service_id != service_id
            ]
            if unknown:
                raise UnknownCardError(unknown)
            distinct = {content_hash(item): item for item in items}
            stored = self._insert_feedback(connection, distinct, received_at)
            self._suppress(connection, [distinct[h] for h in sorted(stored)], cards, received_at)
        return FeedbackResult(
            stored=len(stored),
            duplicates=len(items) - len(stored),
            card_rules={uuid: card.rule_id for uuid, card in cards.items()},
            patients=frozenset(card.patient_pseudonym for card in cards.values()),
        )

    def first_token_use(self, issuer: str, jti: str, expires_at: datetime) -> bool:
        """True the first time any replica presents (issuer, jti), False for a replay.

        The id is kept until ``expires_at``; expired ids are deleted on the way (a few
        rows per call, so the table stays as small as the live tokens)."""
        _require_aware("expires_at", expires_at)
        now = datetime.now(UTC)
        claim = (
            self._insert(TokenUse)
            .values(issuer=issuer, jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["issuer", "jti"])
            .returning(TokenUse.jti)
        )
        expired = (
            select(TokenUse.issuer, TokenUse.jti)
            .where(TokenUse.expires_at <= now)
            .limit(_EXPIRED_PER_CALL)
        )
        with self._write() as connection:
            first = connection.execute(claim).first() is not None
            stale = connection.execute(expired).all()
            if stale:
                connection.execute(
                    delete(TokenUse).where(
                        tuple_(TokenUse.issuer, TokenUse.jti).in_([tuple(row) for row in stale]),
                        TokenUse.expires_at <= now,
                    )
                )
        return first

    def suppressed_rules(self, patient_pseudonym: str, now: datetime) -> set[str]:
        """The rule ids silenced for this patient at ``now`` (an aware datetime)."""
        _require_aware("now", now)
        return {rule for rule, until in self.suppressions(patient_pseudonym) if until > now}

    def suppressions(self, patient_pseudonym: str) -> list[tuple[str, datetime]]:
        """Every (rule id, until) stored for this patient, expired ones included: a caller
        that keeps them for a while compares ``until`` with its own clock."""
        with self._read(one_statement=True) as connection:
            rows = connection.execute(_SUPPRESSIONS_OF, {"patient": patient_pseudonym})
            return [(rule_id, until) for rule_id, until in rows]

    def reset_suppressions(self, rule_id: str | None = None) -> int:
        """Delete the suppressions (of one rule, or all); how many there were."""
        statement = delete(Suppression)
        if rule_id is not None:
            statement = statement.where(Suppression.rule_id == rule_id)
        with self._write() as connection:
            return connection.execute(statement).rowcount

    def prune(self, cards_before: datetime, now: datetime) -> PruneResult:
        """Delete what retention no longer keeps: suppressions and token ids expired at
        ``now``, then cards issued before ``cards_before`` with their feedback (a card
        that a live suppression names stays until that suppression expires).

        Cards go in batches of ``PRUNE_BATCH``, one transaction each, so a writer waits
        for one batch at most. On PostgreSQL one pruner runs at a time (an advisory
        lock; another replica's concurrent call returns at once having deleted nothing).
        """
        _require_aware("cards_before", cards_before)
        _require_aware("now", now)
        with self._write() as connection:
            if not self._prune_lock(connection):
                return PruneResult()
            suppressions = connection.execute(
                delete(Suppression).where(Suppression.until <= now)
            ).rowcount
            tokens = connection.execute(delete(TokenUse).where(TokenUse.expires_at <= now)).rowcount
        cards = feedback = 0
        while True:
            with self._write() as connection:
                if not self._prune_lock(connection):
                    break
                deleted_cards, deleted_feedback = self._prune_cards(connection, cards_before)
            cards += deleted_cards
            feedback += deleted_feedback
            if deleted_cards < PRUNE_BATCH:
                break
        return PruneResult(
            cards=cards, feedback=feedback, suppressions=suppressions, token_uses=tokens
        )

    def _prune_lock(self, connection: Connection) -> bool:
        if self._dialect != "postgresql":
            return True  # SQLite: BEGIN IMMEDIATE already serialises writers
        locked = connection.execute(select(func.pg_try_advisory_xact_lock(_PRUNE_LOCK_KEY)))
        return bool(locked.scalar())

    def _prune_cards(self, connection: Connection, cards_before: datetime) -> tuple[int, int]:
        """One batch of old cards, and their feedback; (cards, feedback items) deleted."""
        still_silencing = exists().where(Suppression.card_uuid == IssuedCard.card_uuid)
        old = connection.execute(
            select(IssuedCard.card_uuid)
            .where(IssuedCard.issued_at < cards_before, ~still_silencing)
            .order_by(IssuedCard.issued_at)
            .limit(PRUNE_BATCH)
        ).scalars()
        uuids = sorted(old)
        if not uuids:
            return 0, 0
        feedback = connection.execute(delete(Feedback).where(Feedback.card_uuid.in_(uuids)))
        cards = connection.execute(delete(IssuedCard).where(IssuedCard.card_uuid.in_(uuids)))
        return cards.rowcount, feedback.rowcount

    def report(self, start: datetime | None = None, end: datetime | None = None) -> list[ReportRow]:
        """Feedback per (rule_id, rules_version) on the cards issued in [start, end),
        sorted by rule then version. Cards without feedback count as issued only."""
        window = []
        if start is not None:
            window.append(IssuedCard.issued_at >= _require_aware("start", start))
        if end is not None:
            window.append(IssuedCard.issued_at < _require_aware("end", end))
        group = (IssuedCard.rule_id, IssuedCard.rules_version)

        def cards_with(outcome: str) -> ColumnElement[int]:
            return func.count(case((Feedback.outcome == outcome, IssuedCard.card_uuid)).distinct())

        totals = (
            select(
                *group,
                func.count(IssuedCard.card_uuid.distinct()),
                cards_with("accepted"),
                cards_with("overridden"),
            )
            .outerjoin(Feedback, Feedback.card_uuid == IssuedCard.card_uuid)
            .where(*window)
            .group_by(*group)
            .order_by(*group)
        )
        reasons = (
            select(*group, Feedback.override_code, func.count(IssuedCard.card_uuid.distinct()))
            .join(Feedback, Feedback.card_uuid == IssuedCard.card_uuid)
            .where(*window, Feedback.outcome == "overridden")
            .group_by(*group, Feedback.override_code)
        )
        with self._read() as connection:
            reason_counts: dict[tuple[str, str], dict[str, int]] = {}
            for rule_id, version, code, count in connection.execute(reasons):
                if code is not None:  # an override without a reason
                    reason_counts.setdefault((rule_id, version), {})[code] = count
            return [
                ReportRow(
                    rule_id=rule_id,
                    rules_version=version,
                    issued=issued,
                    accepted=accepted,
                    overridden=overridden,
                    override_reasons=dict(
                        sorted(reason_counts.get((rule_id, version), {}).items())
                    ),
                )
                for rule_id, version, issued, accepted, overridden in connection.execute(totals)
            ]

    # -- internals ---------------------------------------------------------------------

    def _insert(self, entity: type[Any]) -> postgresql.Insert | sqlite.Insert:
        """The dialect's INSERT, which knows ``ON CONFLICT``."""
        if self._dialect == "postgresql":
            # here, not at the top: SQLAlchemy's PostgreSQL dialect is ~20 ms of every
            # start, and the engine has already loaded it when the database is PostgreSQL
            from sqlalchemy.dialects import postgresql  # noqa: PLC0415

            return postgresql.insert(entity)
        return sqlite.insert(entity)

    @contextmanager
    def _write(self, *, one_statement: bool = False) -> Iterator[Connection]:
        """A connection in a write transaction (SQLite: ``BEGIN IMMEDIATE``).

        One statement on PostgreSQL runs in autocommit instead: it is atomic by itself, and
        the hook's path saves the BEGIN and COMMIT round trips.
        """
        with self._write_turn(), self._engine.connect() as connection:
            if one_statement and self._dialect == "postgresql":
                connection.execution_options(isolation_level="AUTOCOMMIT")
            with connection.begin():
                yield connection

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        """SQLite: one write transaction at a time in this process.

        Threads of one process (the card writer, token replay checks, feedback) queue on a
        lock, woken the moment it is free, instead of on SQLite's busy handler, which
        sleeps 1 to 100 ms between retries: with card batches and token checks writing at
        once, that put 100-250 ms at the p99 of an authenticated call. Other processes
        still queue on the busy timeout; waiting longer than it fails the same way."""
        if self._dialect != "sqlite":
            yield
            return
        if not self._write_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise OperationalError(
                "BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")
            )
        try:
            yield
        finally:
            self._write_lock.release()

    @contextmanager
    def _read(self, *, one_statement: bool = False) -> Iterator[Connection]:
        """A connection for reading: a snapshot across statements, and no write lock.

        On PostgreSQL a single statement runs in autocommit (no BEGIN and COMMIT round
        trips on the hook's path) and several in one REPEATABLE READ snapshot. A SQLite
        read transaction in WAL mode is a snapshot already.
        """
        with self._engine.connect() as connection:
            if self._dialect == "postgresql":
                level = "AUTOCOMMIT" if one_statement else "REPEATABLE READ"
                connection.execution_options(isolation_level=level)
            else:
                connection.execution_options(**{_READ_ONLY: True})
            with connection.begin():
                yield connection

    def _cards(self, connection: Connection, uuids: Iterable[str]) -> dict[str, _Card]:
        statement = select(
            IssuedCard.card_uuid,
            IssuedCard.service_id,
            IssuedCard.rule_id,
            IssuedCard.patient_pseudonym,
            IssuedCard.suppress_days,
            IssuedCard.suppress_reasons,
        ).where(IssuedCard.card_uuid.in_(sorted(uuids)))
        return {
            uuid: _Card(service, rule, patient, days, frozenset(reasons))
            for uuid, service, rule, patient, days, reasons in connection.execute(statement)
        }

    def _insert_feedback(
        self, connection: Connection, items: dict[str, FeedbackRecord], received_at: datetime
    ) -> set[str]:
        """Insert the items not stored yet; the content hashes of those inserted.

        Rows go in hash order so that concurrent calls lock unique keys in the same order
        and cannot deadlock each other.
        """
        rows = [
            {
                "content_hash": digest,
                "card_uuid": item.card_uuid,
                "outcome": item.outcome,
                "outcome_timestamp": item.outcome_timestamp,
                "accepted_suggestions": list(item.accepted_suggestions),
                "override_system": item.override_system,
                "override_code": item.override_code,
                "override_display": item.override_display,
                "has_comment": item.has_comment,
                "received_at": received_at,
            }
            for digest, item in sorted(items.items())
        ]
        statement = (
            self._insert(Feedback)
            .on_conflict_do_nothing(index_elements=["content_hash"])
            .returning(Feedback.content_hash)
        )
        return set(connection.execute(statement, rows).scalars())

    def _suppress(
        self,
        connection: Connection,
        items: Sequence[FeedbackRecord],
        cards: dict[str, _Card],
        now: datetime,
    ) -> None:
        """Create or extend the suppressions the overrides among ``items`` call for."""
        ends: dict[tuple[str, str], tuple[datetime, str]] = {}
        for item in items:
            card = cards[item.card_uuid]
            if (
                item.outcome != "overridden"
                or card.suppress_days is None
                or card.suppress_days <= 0
                or item.override_code not in card.suppress_reasons
            ):
                continue
            key = (card.patient_pseudonym, card.rule_id)
            until = _suppression_end(item.outcome_timestamp, card.suppress_days)
            if key not in ends or until > ends[key][0]:
                ends[key] = (until, item.card_uuid)
        for (patient, rule_id), (until, card_uuid) in sorted(ends.items()):
            statement = self._insert(Suppression).values(
                patient_pseudonym=patient,
                rule_id=rule_id,
                until=until,
                card_uuid=card_uuid,
                updated_at=now,
            )
            statement = statement.on_conflict_do_update(
                index_elements=["patient_pseudonym", "rule_id"],
                set_={
                    "until": statement.excluded.until,
                    "card_uuid": statement.excluded.card_uuid,
                    "updated_at": statement.excluded.updated_at,
                },
                where=statement.excluded.until > Suppression.until,
            )
            connection.execute(statement)


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if "connect_timeout" not in parsed.query:
            # libpq would wait forever for an unreachable host, and a hook call with it
            parsed = parsed.update_query_dict({"connect_timeout": str(PG_CONNECT_TIMEOUT_S)})
        # pre-ping: after a database restart the first call reconnects instead of failing
        return create_engine(
            parsed,
            pool_pre_ping=True,
            pool_timeout=PG_POOL_TIMEOUT_S,
            connect_args={"options": f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"},
        )
    raise ValueError(f"unsupported feedback database {backend!r}: use sqlite or postgresql")


def _enable_wal(cursor: Any) -> None:
    """Put the database file in WAL mode (it stays so), unless it already is.

    Switching needs an exclusive lock, and SQLite answers "database is locked" at once,
    without waiting out the busy timeout, when another process is switching or creating the
    same new file: several workers starting on a fresh database do exactly that. So retry.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            if cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("database is locked: could not switch it to WAL mode")
        time.sleep(0.01)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in database:
        # SQLAlchemy pools in-memory databases per thread: each would be a new, empty one
        raise ValueError("an in-memory SQLite feedback store is not supported: give a file")
    on_disk = not database.startswith("file:")
    if on_disk:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # the driver's own transaction handling would BEGIN lazily, as DEFERRED, and not
        # around DDL; hand transactions to SQLAlchemy (the "begin" hook below)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if on_disk:
                _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
