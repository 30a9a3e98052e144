"""``SuppressionCache``: a worker's recent reads of patients' suppressions.

order-select fires on every change of an order, for the same patient, seconds apart; each
call with a card needs that patient's suppressions. Kept here for ``ttl`` seconds (and at
most ``capacity`` patients, least recently used out), they cost one store read per
patient and interval instead of one per call.

The rows are kept with their ``until``, so a suppression still ends exactly on time.
Feedback stored by this worker ``forget``s its patients at once; feedback stored by
another worker or replica is seen when the entry expires, within ``ttl``. A read that was
already under way when this worker forgot a patient is not kept (an ``epoch`` tells), so
it cannot put back what the feedback replaced.

Not thread-safe: the event loop's thread uses it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime

__all__ = ["Rows", "SuppressionCache"]

Rows = tuple[tuple[str, datetime], ...]
"""(rule id, until) per suppression of one patient."""


class SuppressionCache:
    def __init__(self, ttl: float, capacity: int = 10_000) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[float, Rows]] = OrderedDict()
        self.epoch = 0
        """Moves on every ``forget``: a read begun in an older epoch is not stored."""

    def get(self, patient: str) -> Rows | None:
        """The patient's rows if read less than ``ttl`` ago, else None."""
        entry = self._entries.get(patient)
        if entry is None:
            return None
        if time.monotonic() - entry[0] >= self.ttl:
            del self._entries[patient]
            return None
        self._entries.move_to_end(patient)
        return entry[1]

    def put(
        self, patient: str, rows: Sequence[tuple[str, datetime]], *, read_at: float, epoch: int
    ) -> None:
        """Keep rows read at ``read_at`` (monotonic) in ``epoch``, unless stale already."""
        if self.ttl <= 0 or epoch != self.epoch:
            return
        self._entries[patient] = (read_at, tuple(rows))
        self._entries.move_to_end(patient)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def forget(self, patients: Iterable[str]) -> None:
        """Drop these patients' rows (their suppressions changed)."""
        self.epoch += 1
        for patient in patients:
            self._entries.pop(patient, None)

    def __len__(self) -> int:
        return len(self._entries)
