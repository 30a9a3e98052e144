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
only, per worker, bounded: answers by their JSON size (``max_bytes`` in all, an answer
over an eighth of it is not kept), servers by count; keys are digests, so a long URL
costs no more than a short one. Answers are shared read-only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import TTLCache

__all__ = ["CallRecall", "OptionalRecall"]


def _digest(*parts: str) -> bytes:
    """One key for several strings (length-prefixed: fields cannot run into each other)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.digest()


def _json_size(value: Any) -> int | None:
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return None


class OptionalRecall:
    """Recent optional answers and resting servers, each for ``remember_for`` seconds."""

    def __init__(
        self,
        remember_for: float,
        *,
        max_bytes: int = 32_000_000,
        max_servers: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remember_for = remember_for
        self.max_bytes = max_bytes
        self._answers: TTLCache[bytes, tuple[Any, int]] = TTLCache(
            max_bytes, remember_for, timer=clock, getsizeof=lambda item: item[1]
        )
        self._resting: TTLCache[bytes, bool] = TTLCache(max_servers, remember_for, timer=clock)

    def for_call(self, base: str, access_token: str | None) -> CallRecall:
        """What this worker remembers for one call to ``base`` with this token."""
        return CallRecall(self, base, _digest(access_token or "").hex())


@dataclass(frozen=True)
class CallRecall:
    """``OptionalRecall`` seen from one call: its server base and a digest of its token
    (the token itself stays in the call's request headers only)."""

    memory: OptionalRecall
    base: str
    token: str

    @property
    def enabled(self) -> bool:
        return self.memory.remember_for > 0

    def answer(self, query: str) -> Any | None:
        """The remembered answer to ``query`` for this server and token, or None."""
        if not self.enabled:
            return None
        found = self.memory._answers.get(_digest(self.base, query, self.token))
        return None if found is None else found[0]

    def remember(self, query: str, value: Any) -> None:
        size = _json_size(value) if self.enabled else None
        if size is not None and size <= self.memory.max_bytes // 8:
            self.memory._answers[_digest(self.base, query, self.token)] = (value, size)

    def resting(self) -> bool:
        """Whether an optional search on this server failed within the period."""
        return self.enabled and _digest(self.base) in self.memory._resting

    def failed(self) -> None:
        if self.enabled:
            self.memory._resting[_digest(self.base)] = True
