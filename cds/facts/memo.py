"""``ChartMemo``: a patient's chart (the prefetch) read once for as long as it stays the
same, on top of ``FactCache``'s per-resource memory.

order-select fires again on every change of the draft order while the prefetch (the
patient's active orders, conditions, labs) stays byte for byte the same. ``FactCache``
already spares validation of each resource, but a 1,000-resource chart still costs a key
and a lookup per resource on every call; here one digest of the whole prefetch finds the
whole reading. The draft orders are read on every call.

A key is a BLAKE2b digest of the rules version, the day, the service, the patient id, the
request's default language and the prefetch's exact JSON, so a reading is served only to
the same patient's identical chart under the same rules on the same day. One memo belongs
to one rule base (``RuleBase.chart_memo``): a reload starts an empty one. Bounded (least
recently used out), one lock; a chart naming many Medications (it would keep their
parsed JSON alive) or yielding thousands of facts and issues is not kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cds.facts.extract import Extraction

__all__ = ["DEFAULT_CHARTS", "ChartMemo", "ChartReading"]

DEFAULT_CHARTS = 128
"""Charts remembered per worker (a reading holds facts and issues, not the resources)."""

MEDICATIONS_KEPT = 100
"""A chart with more Medication resources than this is read every time."""

ITEMS_KEPT = 2_000
"""A chart whose reading has more facts and issues than this (a hostile or odd chart:
thousands of another patient's resources) is read every time, so the memo stays a few
tens of MB at most."""


@dataclass(frozen=True)
class ChartReading:
    """What the prefetch yielded: its facts, issues and counts, and the Medications a
    draft order may name."""

    extraction: Extraction
    medications: Mapping[str, Mapping[str, Any]]


class ChartMemo:
    """``ChartReading``s of one rule base by the content of the chart."""

    def __init__(self, version: str, max_entries: int = DEFAULT_CHARTS) -> None:
        self.version = version
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, ChartReading] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def key(
        self,
        prefetch: Mapping[str, Any] | None,
        *,
        service: str,
        patient_id: str,
        today: dt.date,
        language: str | None,
    ) -> bytes | None:
        """The key of this chart for this request, or None if it has no exact JSON."""
        try:
            content = orjson.dumps(prefetch)
        except (TypeError, orjson.JSONEncodeError):
            return None
        scope = orjson.dumps([self.version, today.isoformat(), service, patient_id, language])
        digest = hashlib.blake2b(scope, digest_size=32)
        digest.update(content)
        return digest.digest()

    def get(self, key: bytes | None) -> ChartReading | None:
        if key is None:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: bytes | None, reading: ChartReading) -> None:
        items = len(reading.extraction.facts) + len(reading.extraction.issues)
        if key is None or len(reading.medications) > MEDICATIONS_KEPT or items > ITEMS_KEPT:
            return
        with self._lock:
            self._entries[key] = reading
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
