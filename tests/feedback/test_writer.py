"""``CardWriter`` on a real store: batches in one transaction, never blocks the caller,
counts what it drops, and settles or closes with everything written."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text

from cds.feedback import FeedbackStore
from cds.feedback.writer import CardWriter, PeriodicJob
from tests.feedback.support import card

Drops = list[tuple[str, int, str]]


@pytest.fixture
def drops() -> Drops:
    return []


@pytest.fixture
def writers(store: FeedbackStore, drops: Drops) -> Iterator[list[CardWriter]]:
    made: list[CardWriter] = []
    yield made
    for writer in made:
        writer.close(timeout=5)


def _writer(
    store: FeedbackStore, drops: Drops, made: list[CardWriter], **options: Any
) -> CardWriter:
    def dropped(reason: str, count: int, exc: BaseException | None) -> None:
        drops.append((reason, count, type(exc).__name__ if exc else ""))

    writer = CardWriter(store.record_cards, on_drop=dropped, **options)
    made.append(writer)
    return writer


def _stored(store: FeedbackStore) -> set[str]:
    with store.engine.connect() as connection:
        return set(connection.execute(text("SELECT card_uuid FROM issued_cards")).scalars())


def test_cards_submitted_together_are_written_in_one_transaction(
    store: FeedbackStore, drops: Drops, writers: list[CardWriter]
) -> None:
    inserts: list[int] = []

    def count(*args: Any) -> None:  # (conn, cursor, statement, parameters, context, many)
        statement, parameters, executemany = args[2], args[3], args[5]
        if statement.lstrip().upper().startswith("INSERT INTO ISSUED_CARDS"):
            inserts.append(len(parameters) if executemany else 1)

    event.listen(store.engine, "before_cursor_execute", count)
    writer = _writer(store, drops, writers, interval=0.2)
    started = time.monotonic()
    for n in range(40):
        assert writer.submit([card(f"c{n}")])
    assert time.monotonic() - started < 0.1  # submitting never waited for the database
    assert writer.flush(timeout=10)
    assert _stored(store) == {f"c{n}" for n in range(40)}
    assert sum(inserts) == 40
    assert len(inserts) <= 2, inserts  # one batch (two if the first woke the writer early)
    assert drops == []


def test_feedback_finds_a_card_still_in_the_queue(
    store: FeedbackStore, drops: Drops, writers: list[CardWriter]
) -> None:
    writer = _writer(store, drops, writers, interval=30)  # would wait half a minute
    writer.submit([card("c1")])
    started = time.monotonic()
    asyncio.run(writer.settle())  # what feedback does first
    assert time.monotonic() - started < 5
    assert _stored(store) == {"c1"}


@contextmanager
def _database_held(database_url: str) -> Iterator[None]:
    """Another client holds the card table (SQLite: the whole file) for the block."""
    if database_url.startswith("sqlite"):
        blocker = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as pg:
        pg.execute("LOCK TABLE issued_cards IN ACCESS EXCLUSIVE MODE")
        yield  # the connection's transaction ends (and the lock with it) on leaving


def test_a_full_queue_drops_new_cards_counted_without_waiting(
    store: FeedbackStore, drops: Drops, writers: list[CardWriter], database_url: str
) -> None:
    with _database_held(database_url):
        writer = _writer(store, drops, writers, interval=0.01, capacity=3)
        writer.submit([card("c0")])
        time.sleep(0.3)  # the writer took c0 and waits for the database
        started = time.monotonic()
        accepted = [writer.submit([card(f"c{n}")]) for n in range(1, 6)]
        assert time.monotonic() - started < 0.1
        assert accepted == [True, True, True, False, False]
        assert drops == [("queue-full", 1, ""), ("queue-full", 1, "")]
    assert writer.flush(timeout=15)
    assert _stored(store) == {"c0", "c1", "c2", "c3"}


def test_a_batch_the_database_refuses_is_retried_then_dropped_and_counted(
    store: FeedbackStore, drops: Drops, writers: list[CardWriter]
) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE issued_cards RENAME TO issued_cards_away"))
    writer = _writer(store, drops, writers, interval=0.01, retry_for=0.3)
    writer.submit([card("c1"), card("c2")])
    assert writer.flush(timeout=10)
    assert drops[0][:2] == ("store-error", 2)
    assert drops[0][2] in {"OperationalError", "ProgrammingError"}
    with store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE issued_cards_away RENAME TO issued_cards"))
    writer.submit([card("c3")])  # the writer lives on
    assert writer.flush(timeout=10)
    assert _stored(store) == {"c3"}


def test_close_writes_what_is_queued(
    store: FeedbackStore, drops: Drops, writers: list[CardWriter]
) -> None:
    writer = _writer(store, drops, writers, interval=30)
    writer.submit([card("c1"), card("c2")])
    writer.close(timeout=10)
    assert _stored(store) == {"c1", "c2"}
    assert not writer.submit([card("c3")])  # closed: refused and reported
    assert drops == [("shutdown", 1, "")]


def test_the_periodic_job_runs_on_the_writer_thread(
    store: FeedbackStore, drops: Drops, writers: list[CardWriter]
) -> None:
    runs: list[str] = []
    job = PeriodicJob(0.05, lambda: runs.append(threading.current_thread().name))
    _writer(store, drops, writers, job=job)
    deadline = time.monotonic() + 10
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runs[:3] == ["card-writer"] * 3
