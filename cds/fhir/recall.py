"""``OptionalRecall``: what a worker remembers of the optional prefetch (the labs) it
fetched from a FHIR server.

order-select fires again on every change of a draft order, for the same patient with the
same access token. Without a memory, an EHR whose prefetch leaves out ``observations``
would put one FHIR round trip in front of every answer, and a FHIR server that cannot
answer it (out of reach, no Observation access, slow) would cost a failed request, up to
the optional budget, on every call. So for ``remember_for`` seconds a worker keeps:

- each optional search's answer, keyed by the server base, the rendered query (it names
  the patient) and a digest of the access token: a call with another token fetches for
  itself, because that session may not be allowed to read the labs;
- each server base whose optional search failed: it is not asked for optional data again
  until the period ends (the labs are left out meanwhile, exactly as after the failure).

Required keys are never remembered: a call that lacks them always fetches them. Memory
only, per worker, bounded (``capacity`` entries each, the oldest out); answers are shared
read-only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

__all__ = ["CallRecall", "OptionalRecall"]


def _token_digest(access_token: str | None) -> bytes:
    return hashlib.blake2b((access_token or "").encode(), digest_size=16).digest()


class OptionalRecall:
    """Recent optional answers and resting servers, each for ``remember_for`` seconds."""

    def __init__(
        self,
        remember_for: float,
        *,
        capacity: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remember_for = remember_for
        self._answers: TTLCache[tuple[str, str, bytes], Any] = TTLCache(
            capacity, remember_for, timer=clock
        )
        self._resting: TTLCache[str, bool] = TTLCache(capacity, remember_for, timer=clock)

    def for_call(self, base: str, access_token: str | None) -> CallRecall:
        """What this worker remembers for one call to ``base`` with this token."""
        return CallRecall(self, base, _token_digest(access_token))


@dataclass(frozen=True)
class CallRecall:
    """``OptionalRecall`` seen from one call: its server base and token digest."""

    memory: OptionalRecall
    base: str
    token: bytes

    @property
    def enabled(self) -> bool:
        return self.memory.remember_for > 0

    def answer(self, query: str) -> Any | None:
        """The remembered answer to ``query`` for this server and token, or None."""
        if not self.enabled:
            return None
        return self.memory._answers.get((self.base, query, self.token))

    def remember(self, query: str, value: Any) -> None:
        if self.enabled:
            self.memory._answers[(self.base, query, self.token)] = value

    def resting(self) -> bool:
        """Whether an optional search on this server failed within the period."""
        return self.enabled and self.base in self.memory._resting

    def failed(self) -> None:
        if self.enabled:
            self.memory._resting[self.base] = True
