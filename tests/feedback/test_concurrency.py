"""Several workers at once: the database, not the process, keeps the data consistent."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from cds.feedback import FeedbackResult, FeedbackStore
from cds.feedback import store as store_module
from cds.feedback.migrate import current_revision, head_revision
from cds.feedback.models import Feedback, IssuedCard, Suppression
from tests.feedback.conftest import OpenStore
from tests.feedback.support import RULE, SERVICE, T0, card, overridden, patient

WORKERS = 4
PROCESSES = 2
"""Worker processes for the migration test: each costs an interpreter start (~0.7 s)."""
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def at_once(task: Callable[[int], T]) -> list[T]:
    """Run ``task(worker)`` in WORKERS threads released together; re-raise any failure."""
    start = threading.Barrier(WORKERS)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        start.wait()
        try:
            results[worker] = task(worker)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[n] for n in range(WORKERS)]


def test_the_same_feedback_from_four_workers_is_stored_once(open_store: OpenStore) -> None:
    stores = at_once(lambda _: open_store())  # each its own engine, like worker processes
    at_once(lambda n: stores[n].record_cards([card("c1")]))
    results = at_once(lambda n: stores[n].add_feedback(SERVICE, [overridden("c1")]))
    assert sorted(results, key=lambda r: r.stored) == [FeedbackResult(0, 1)] * 3 + [
        FeedbackResult(1, 0)
    ]
    with stores[0].engine.connect() as connection:
        for entity in (IssuedCard, Feedback, Suppression):
            rows = connection.execute(select(func.count()).select_from(entity)).scalar_one()
            assert rows == 1, entity.__tablename__
    assert stores[0].suppressed_rules(patient(), T0) == {RULE}


def test_one_shared_store_serves_many_threads(store: FeedbackStore) -> None:
    store.record_cards([card(f"c{n}") for n in range(WORKERS)])
    results = at_once(lambda n: store.add_feedback(SERVICE, [overridden(f"c{n}")]))
    assert results == [FeedbackResult(1, 0)] * WORKERS


WORKER_SCRIPT = textwrap.dedent(
    """
    import sys
    from cds.feedback import FeedbackStore
    print("ready", flush=True)
    sys.stdin.readline()
    FeedbackStore(sys.argv[1]).close()
    """
)


def test_worker_processes_opening_a_fresh_database_together_migrate_it_once(
    database_url: str,
) -> None:
    """Alembic's in-process lock does not reach other processes: the database's lock does."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, database_url],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline() == "ready\n"
    for worker in workers:  # every interpreter has imported the store: release them together
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outcomes = [worker.communicate(timeout=60) for worker in workers]
    failures = [
        err for worker, (_, err) in zip(workers, outcomes, strict=True) if worker.returncode
    ]
    assert failures == []
    with FeedbackStore(database_url) as store, store.engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_token_uses_from_threads_of_one_process_each_count_once(store: FeedbackStore) -> None:
    """Replay checks race each other and the card writer; each jti is first exactly once."""
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    jtis = [f"jti-{i}" for i in range(40)]

    def claim_all(worker: int) -> list[bool]:
        order = jtis if worker % 2 == 0 else list(reversed(jtis))
        return [store.first_token_use("iss", jti, expires) for jti in order]

    results = at_once(claim_all)
    firsts = dict.fromkeys(jtis, 0)
    for worker, answers in enumerate(results):
        order = jtis if worker % 2 == 0 else list(reversed(jtis))
        for jti, first in zip(order, answers, strict=True):
            firsts[jti] += first
    assert set(firsts.values()) == {1}


def test_a_sqlite_write_waits_its_turn_no_longer_than_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process, writers queue on a lock (no sleeping busy handler); one held past
    the busy timeout fails as SQLite's own timeout would, as a store error."""
    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_MS", 100)
    with FeedbackStore(f"sqlite:///{tmp_path / 'f.db'}") as local:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        # another thread's transaction, held open
        with local._write_turn(), pytest.raises(SQLAlchemyError):
            local.first_token_use("iss", "jti-late", expires)
        assert local.first_token_use("iss", "jti-late", expires)
