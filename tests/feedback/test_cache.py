"""``SuppressionCache``: rows kept for the TTL, least recently used out, and a read that
raced a ``forget`` not put back."""

from __future__ import annotations

import time

from cds.feedback.cache import SuppressionCache
from tests.feedback.support import T0

ROWS = (("rule.a", T0),)


def test_rows_are_kept_for_the_ttl_only() -> None:
    cache = SuppressionCache(ttl=0.2)
    cache.put("p1", ROWS, read_at=time.monotonic(), epoch=cache.epoch)
    assert cache.get("p1") == ROWS
    time.sleep(0.25)
    assert cache.get("p1") is None
    assert len(cache) == 0


def test_the_ttl_counts_from_when_the_read_began() -> None:
    cache = SuppressionCache(ttl=1.0)
    cache.put("p1", ROWS, read_at=time.monotonic() - 2.0, epoch=cache.epoch)  # a slow read
    assert cache.get("p1") is None


def test_forget_drops_the_patient_and_refuses_reads_begun_before() -> None:
    cache = SuppressionCache(ttl=60)
    cache.put("p1", ROWS, read_at=time.monotonic(), epoch=cache.epoch)
    began = cache.epoch  # a read of p2 starts ...
    cache.forget(["p1"])  # ... feedback for p2's card is stored meanwhile
    assert cache.get("p1") is None
    cache.put("p2", (), read_at=time.monotonic(), epoch=began)
    assert cache.get("p2") is None  # the read may predate the new suppression
    cache.put("p2", ROWS, read_at=time.monotonic(), epoch=cache.epoch)
    assert cache.get("p2") == ROWS


def test_least_recently_used_patients_go_first_beyond_capacity() -> None:
    cache = SuppressionCache(ttl=60, capacity=2)
    for patient in ("p1", "p2"):
        cache.put(patient, ROWS, read_at=time.monotonic(), epoch=cache.epoch)
    assert cache.get("p1") == ROWS  # p2 is now the least recently used
    cache.put("p3", ROWS, read_at=time.monotonic(), epoch=cache.epoch)
    assert (cache.get("p1"), cache.get("p2"), cache.get("p3")) == (ROWS, None, ROWS)


def test_a_zero_ttl_keeps_nothing() -> None:
    cache = SuppressionCache(ttl=0)
    cache.put("p1", ROWS, read_at=time.monotonic(), epoch=cache.epoch)
    assert cache.get("p1") is None
