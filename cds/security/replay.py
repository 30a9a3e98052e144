"""The ``jti`` replay cache: each (iss, jti) is accepted once while its token could be.

An entry is kept until the token it came from expires (``exp`` plus the leeway), then
forgotten: after that the token is refused as expired anyway. The cache is bounded; when
it is full of live entries new tokens are refused rather than an entry dropped, because a
dropped entry would reopen a replay window (fill it only with valid tokens from trusted
clients, i.e. a capacity problem: raise ``max_entries`` or add workers).

The cache lives in one process. With several worker processes (``--workers N``) or
replicas, a token replayed to another process is not seen; a shared store (Redis ``SET
NX EX``) would be needed to close that gap.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

__all__ = ["ReplayCache", "ReplayCacheFullError"]


class ReplayCacheFullError(Exception):
    """Every slot holds an unexpired token id; the new token cannot be tracked."""


class ReplayCache:
    """Remembers (iss, jti) until their expiry, at most ``max_entries`` at a time."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max_entries = max_entries
        self._clock = clock
        self._expiry: dict[tuple[str, str], float] = {}
        self._queue: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        self._forget_expired()
        return len(self._expiry)

    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool:
        """True, and remembered until ``expires_at``, the first time; False for a replay.

        Raises ``ReplayCacheFullError`` when the id is new but there is no room.
        """
        self._forget_expired()
        key = (issuer, jti)
        if key in self._expiry:
            return False
        if len(self._expiry) >= self._max_entries:
            raise ReplayCacheFullError(f"{self._max_entries} unexpired token ids")
        self._expiry[key] = expires_at
        heapq.heappush(self._queue, (expires_at, key))
        return True

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._queue and self._queue[0][0] <= now:
            _, key = heapq.heappop(self._queue)
            del self._expiry[key]
