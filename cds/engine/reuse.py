"""The engine's answer to a list of facts it has seen before, without a session.

The rules read nothing but the facts they are given (no clock, no I/O), so the same facts
in the same order give the same firings and outcomes. Order-select fires again and again
with the same record: once the facts are remembered (``cds.facts.cache``), so is the
answer. One ``ResultReuse`` belongs to one rule base, so a reload starts empty; keyed by a
BLAKE2b digest of the facts' exact JSON; bounded by entries and by bytes (least recently
used out): an answer binds whole facts to every firing, ~5-100 KB each for the bundled
examples, so 1,024 of them could keep 25 MB or more alive. Suppression and card uuids are
applied after, per request, so nothing of one call's answer leaks into another's.
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
from cds.engine.sizes import approximate_size

__all__ = ["DEFAULT_RESULTS", "DEFAULT_RESULT_BYTES", "Engine", "ResultReuse", "result_weight"]

DEFAULT_RESULTS = 1024
DEFAULT_RESULT_BYTES = 16 * 1024 * 1024
"""Bytes the remembered answers may keep alive per worker (``result_weight``)."""

JSON_TO_MEMORY = 6
"""An answer's objects take 3.8-5.7 times its JSON's length (``approximate_size`` over
the bundled examples); its JSON is 15 times quicker to measure (~10 µs, on a miss only)."""


class Engine(Protocol):
    """What ``ResultReuse`` needs of ``RuleEngine``."""

    def evaluate(self, facts: Sequence[Mapping[str, Any]]) -> EngineResult: ...


class ResultReuse:
    def __init__(
        self, max_entries: int = DEFAULT_RESULTS, max_bytes: int = DEFAULT_RESULT_BYTES
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._results: OrderedDict[bytes, tuple[EngineResult, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._results)

    @property
    def size_bytes(self) -> int:
        """What the answers keep alive, as ``result_weight`` estimates it."""
        return self._bytes

    def evaluate(self, engine: Engine, facts: Sequence[Mapping[str, Any]]) -> EngineResult:
        """``engine.evaluate(facts)``, or a copy of its earlier answer to the same facts."""
        key = _key(facts)
        if key is None:  # not plain JSON data: evaluate, remember nothing
            return engine.evaluate(facts)
        with self._lock:
            entry = self._results.get(key)
            if entry is not None:
                self._results.move_to_end(key)
        if entry is None:
            found = engine.evaluate(facts)
            self._keep(key, found, len(key) + result_weight(found))
        else:
            found = entry[0]
        return EngineResult(list(found.outcomes), list(found.firings), found.fact_count)

    def _keep(self, key: bytes, result: EngineResult, weight: int) -> None:
        """Remember ``result``; one heavier than the whole byte bound is not kept."""
        with self._lock:
            replaced = self._results.pop(key, None)  # two requests evaluated it at once
            if replaced is not None:
                self._bytes -= replaced[1]
            if weight > self.max_bytes:
                return
            self._results[key] = (result, weight)
            self._bytes += weight
            while len(self._results) > self.max_entries or self._bytes > self.max_bytes:
                self._bytes -= self._results.popitem(last=False)[1][1]


def result_weight(result: EngineResult) -> int:
    """Bytes an answer keeps alive, estimated from its JSON (an upper bound for the
    bundled examples); exactly counted when it has no JSON form."""
    try:
        return JSON_TO_MEMORY * len(orjson.dumps(result, default=str))
    except TypeError:  # e.g. a mapping with non-string keys
        return approximate_size(result)


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
