"""``CardWriter``: one thread per process that writes issued cards in batches.

A hook call hands its card records over (``submit``: an append under a lock, never a
wait) and answers; the writer wakes, lets ``interval`` pass so the cards of the calls
around it join, and writes them all in one transaction. So the request thread never
meets the database, and a transaction's fixed cost (SQLite's ``BEGIN IMMEDIATE``, the
commit, a PostgreSQL round trip) is shared by every card of the batch.

The queue is bounded: when it is full (the database down or slower than the traffic) new
records are dropped and reported through ``on_drop`` (a metric and a rate-limited log
line), never waited for. A batch the database refuses is retried for ``retry_for``
seconds (new cards keep queueing meanwhile) and then dropped the same way. A dropped card
was still shown; only feedback on it is refused (400, unknown card).

``settle`` (async) and ``flush`` (blocking) wait until every record submitted before the
call is written or dropped: feedback settles first, so it always finds a card this worker
sent. ``close`` writes what is queued and stops the thread. The writer also runs a
periodic job (retention's prune) between batches, so one thread per worker writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from cds.feedback.records import IssuedCardRecord

__all__ = ["BATCH_LIMIT", "CardWriter", "DropHandler", "PeriodicJob"]

log = logging.getLogger("cds.feedback")

BATCH_LIMIT = 500
"""Records per transaction at most (a backlog after an outage goes in several)."""

DropHandler = Callable[[str, int, BaseException | None], None]
"""Called with (reason, records dropped, the error if any), from the writer thread or
the submitting one."""


@dataclass(frozen=True)
class PeriodicJob:
    """Run ``run`` every ``interval`` seconds on the writer thread (first after one)."""

    interval: float
    run: Callable[[], object]


@dataclass
class _Waiter:
    target: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # a caller that timed out cancelled it
        future.set_result(None)


class CardWriter:
    """Writes ``IssuedCardRecord`` batches with ``write`` (a store's ``record_cards``)."""

    def __init__(
        self,
        write: Callable[[Sequence[IssuedCardRecord]], None],
        *,
        on_drop: DropHandler,
        interval: float = 0.02,
        capacity: int = 10_000,
        retry_for: float = 5.0,
        job: PeriodicJob | None = None,
    ) -> None:
        self._write = write
        self._on_drop = on_drop
        self.interval = interval
        self.capacity = capacity
        self.retry_for = retry_for
        self._job = job
        self._queue: deque[IssuedCardRecord] = deque()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._submitted = 0  # records accepted, ever
        self._finished = 0  # records written or dropped, ever
        self._waiters: list[_Waiter] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="card-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Records accepted and not yet written or dropped."""
        return self._submitted - self._finished

    def submit(self, records: Sequence[IssuedCardRecord]) -> bool:
        """Queue ``records`` for the next batch; False (and dropped, reported) when the
        queue is full or the writer stopped."""
        if not records:
            return True
        with self._lock:
            accepted = not self._stopping and len(self._queue) + len(records) <= self.capacity
            if accepted:
                self._queue.extend(records)
                self._submitted += len(records)
        if not accepted:
            self._on_drop("queue-full" if not self._stopping else "shutdown", len(records), None)
            return False
        if not self._wake.is_set():
            self._wake.set()
        return True

    async def settle(self) -> None:
        """Wait until every record submitted before this call is written or dropped."""
        with self._lock:
            target = self._submitted
            if self._finished >= target:
                return
            loop = asyncio.get_running_loop()
            waiter = _Waiter(target, loop, loop.create_future())
            self._waiters.append(waiter)
        self._urgent.set()
        self._wake.set()
        await waiter.future

    def flush(self, timeout: float | None = None) -> bool:
        """Blocking ``settle``; False if ``timeout`` passed first."""
        with self._lock:
            target = self._submitted
        self._urgent.set()
        self._wake.set()
        with self._progress:
            return self._progress.wait_for(lambda: self._finished >= target, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (within ``timeout``), then stop; anything still queued
        after that is dropped and reported."""
        with self._lock:
            self._stopping = True
        self._urgent.set()
        self._wake.set()
        self._thread.join(timeout)
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
        if left:
            self._finish(left, "shutdown", None)

    # -- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        next_job = time.monotonic() + self._job.interval if self._job else None
        while True:
            wait = None if next_job is None else max(0.0, next_job - time.monotonic())
            self._wake.wait(wait)
            if self._wake.is_set() and not self._urgent.is_set():
                self._urgent.wait(self.interval)  # let the calls around this one join
            self._wake.clear()
            self._urgent.clear()
            self._drain()
            if self._job is not None and next_job is not None and time.monotonic() >= next_job:
                try:
                    self._job.run()
                except Exception as exc:  # the job reports its own failures; a bug here
                    log.error("periodic store job failed: %s", type(exc).__name__)
                next_job = time.monotonic() + self._job.interval
            with self._lock:
                if self._stopping and not self._queue:
                    return

    def _drain(self) -> None:
        while True:
            with self._lock:
                count = min(len(self._queue), BATCH_LIMIT)
                batch = [self._queue.popleft() for _ in range(count)]
            if not batch:
                return
            self._write_batch(batch)

    def _write_batch(self, batch: list[IssuedCardRecord]) -> None:
        deadline = time.monotonic() + self.retry_for
        pause = 0.05
        while True:
            try:
                self._write(batch)
            except SQLAlchemyError as exc:
                if time.monotonic() + pause > deadline or self._stopping:
                    self._finish(batch, "store-error", exc)
                    return
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            except Exception as exc:  # a bug, not the database: retrying will not help
                self._finish(batch, "write-error", exc)
                return
            self._finish(batch, None, None)
            return

    def _finish(
        self, batch: list[IssuedCardRecord], dropped: str | None, exc: BaseException | None
    ) -> None:
        if dropped is not None:
            self._on_drop(dropped, len(batch), exc)
        with self._progress:
            self._finished += len(batch)
            ready = [w for w in self._waiters if w.target <= self._finished]
            self._waiters = [w for w in self._waiters if w.target > self._finished]
            self._progress.notify_all()
        for waiter in ready:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                waiter.loop.call_soon_threadsafe(_resolve, waiter.future)
