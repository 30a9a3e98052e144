"""The engine's answer to a list of facts it has seen before, without a session.

The rules read nothing but the facts they are given (no clock, no I/O), so the same facts
in the same order give the same firings and outcomes. Order-select fires again and again
with the same record: once the facts are remembered (``cds.facts.cache``), so is the
answer. One ``ResultReuse`` belongs to one rule base, so a reload starts empty; keyed by a
BLAKE2b digest of the facts' exact JSON; bounded (least recently used out). Suppression
and card uuids are applied after, per request, so nothing of one call's answer leaks
into another's.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from cds.engine.session import EngineResult

__all__ = ["DEFAULT_RESULTS", "Engine", "ResultReuse"]

DEFAULT_RESULTS = 1024


class Engine(Protocol):
    """What ``ResultReuse`` needs of ``RuleEngine``."""

    def evaluate(self, facts: Sequence[Mapping[str, Any]]) -> EngineResult: ...


class ResultReuse:
    def __init__(self, max_entries: int = DEFAULT_RESULTS) -> None:
        self.max_entries = max_entries
        self._results: OrderedDict[bytes, EngineResult] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._results)

    def evaluate(self, engine: Engine, facts: Sequence[Mapping[str, Any]]) -> EngineResult:
        """``engine.evaluate(facts)``, or a copy of its earlier answer to the same facts."""
        key = _key(facts)
        if key is None:  # not plain JSON data: evaluate, remember nothing
            return engine.evaluate(facts)
        with self._lock:
            found = self._results.get(key)
            if found is not None:
                self._results.move_to_end(key)
        if found is None:
            found = engine.evaluate(facts)
            with self._lock:
                self._results[key] = found
                while len(self._results) > self.max_entries:
                    self._results.popitem(last=False)
        return EngineResult(list(found.outcomes), list(found.firings), found.fact_count)


def _key(facts: Sequence[Mapping[str, Any]]) -> bytes | None:
    """A digest of the facts' JSON; ``None`` when a value has no exact JSON (orjson writes
    NaN and infinities as null, which would confuse them with each other)."""
    for fact in facts:
        for value in fact.values():
            if isinstance(value, float) and not math.isfinite(value):
                return None
    try:
        return hashlib.blake2b(orjson.dumps(list(facts)), digest_size=32).digest()
    except TypeError:
        return None
