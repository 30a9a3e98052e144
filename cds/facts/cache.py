"""What one resource yielded, remembered by its content: order-select fires again on every
change of the order with the same patient record, so each chart resource is triaged,
validated and read once per worker, not once per call. A lab Observation of the value
set is remembered the same way: its reading, and FHIR validation's verdict once given.

A ``FactCache`` belongs to one rule base (``RuleBase.fact_cache``): a reload starts an
empty one, and the rules version is in every key as well. A key is a BLAKE2b digest of
the rules version, the day, the patient id, the resource's kind and its exact JSON
bytes, so another patient's, another day's or another rules version's outcome can never
be served. What a reading depended on beyond the resource itself is checked on every hit:
the Medication an order references (``Outcome.medications``) and the request's free-text
budget (``Outcome.text_charged``). Bounded by entries and by the bytes they keep alive
(one reading may hold a 100,000-character complaint text as its display), least recently
used out; one lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from cds.engine import approximate_size
from cds.facts.labs import LabReading
from cds.facts.model import Fact

__all__ = [
    "DEFAULT_BYTES",
    "DEFAULT_ENTRIES",
    "FactCache",
    "Outcome",
    "RecordingLookup",
    "RequestScope",
    "content_bytes",
]

DEFAULT_ENTRIES = 16_384
"""Resources remembered per worker (a 1,000-resource record takes 1,000; an entry is a
few hundred bytes)."""

DEFAULT_BYTES = 16 * 1024 * 1024
"""Bytes the remembered readings may keep alive per worker (``approximate_size``, keys
included): 16,384 ordinary readings take 9-13 MiB; long texts meet this bound first."""

MedicationLookup = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One resource's reading: skipped by triage, or validated with its facts or issue."""

    facts: tuple[Fact, ...] = ()
    validated: bool = False
    issue: str | None = None
    """The skipped resource's ``InputIssue`` message (its position is the request's)."""
    text_charged: int = 0
    """Characters of free text the reading took from the request's ``TextBudget``."""
    medications: tuple[tuple[str, bytes | None], ...] = ()
    """The Medication references looked up, with the JSON of what each resolved to."""
    lab: LabReading | None = None
    """A lab Observation's reading (``validated`` once FHIR validation has judged it:
    only the latest reading of each test is validated, so a cached one may not be yet)."""


def content_bytes(value: Any) -> bytes | None:
    """The exact JSON of a parsed value, or ``None`` if it is not JSON data."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return None


class FactCache:
    """Per-resource ``Outcome``s of one rule base, least recently used out."""

    def __init__(
        self, version: str, max_entries: int = DEFAULT_ENTRIES, max_bytes: int = DEFAULT_BYTES
    ) -> None:
        self.version = version
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, tuple[Outcome, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """What the entries keep alive, as ``approximate_size`` counts it."""
        return self._bytes

    def scope(self, patient_id: str, today: dt.date) -> RequestScope:
        """The keys of one request: this patient, this day, these rules."""
        return RequestScope(self, f"{self.version}\0{today.isoformat()}\0{patient_id}\0")

    def get(self, key: bytes) -> Outcome | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: bytes, outcome: Outcome) -> None:
        """Remember ``outcome``; one heavier than the whole byte bound is not kept."""
        weight = _weight(key, outcome)
        with self._lock:
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self._bytes -= replaced[1]
            if weight > self.max_bytes:
                return
            self._entries[key] = (outcome, weight)
            self._bytes += weight
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._bytes -= self._entries.popitem(last=False)[1][1]


_EMPTY_WEIGHT = approximate_size(Outcome())


def _weight(key: bytes, outcome: Outcome) -> int:
    """``approximate_size`` of an entry; a reading without facts (most of a large record,
    skipped by triage) is counted without the walk (5 µs each)."""
    if outcome.facts or outcome.medications:
        return approximate_size(key) + approximate_size(outcome)
    issue = sys.getsizeof(outcome.issue) if outcome.issue is not None else 0
    return sys.getsizeof(key) + _EMPTY_WEIGHT + issue


class RequestScope:
    """A ``FactCache`` as one request sees it."""

    def __init__(self, cache: FactCache, prefix: str) -> None:
        self.cache = cache
        self._prefix = prefix.encode()

    def key(self, kind: str, resource: Mapping[str, Any]) -> bytes | None:
        """The key of a resource of ``kind`` (``draft``, ``order``, ``condition``,
        ``observation``)."""
        content = content_bytes(resource)
        if content is None:
            return None
        digest = hashlib.blake2b(self._prefix, digest_size=32)
        digest.update(kind.encode() + b"\0")
        digest.update(content)
        return digest.digest()

    def order(self, key: bytes | None, lookup: MedicationLookup) -> Outcome | None:
        """A remembered order whose referenced Medications are still what they were."""
        found = self.cache.get(key) if key is not None else None
        if found is None:
            return None
        for reference, content in found.medications:
            medication = lookup(reference)
            if (None if medication is None else content_bytes(medication)) != content:
                return None
        return found

    def condition(self, key: bytes | None, remaining_text: int) -> Outcome | None:
        """A remembered condition, if the request's text budget still covers its reading
        (only uncut readings are remembered, so the same text is read in full again)."""
        found = self.cache.get(key) if key is not None else None
        if found is None or found.text_charged > remaining_text:
            return None
        return found

    def lab(self, key: bytes | None) -> Outcome | None:
        """A remembered lab Observation's reading (and verdict, once validated)."""
        return self.cache.get(key) if key is not None else None

    def put(self, key: bytes | None, outcome: Outcome) -> None:
        if key is not None:
            self.cache.put(key, outcome)


class RecordingLookup:
    """A medication lookup that remembers what it was asked and what it answered."""

    def __init__(self, lookup: MedicationLookup) -> None:
        self._lookup = lookup
        self.seen: list[tuple[str, bytes | None]] = []
        self.complete = True
        """False when a Medication found is not JSON data (then nothing is remembered)."""

    def __call__(self, reference: str) -> Mapping[str, Any] | None:
        found = self._lookup(reference)
        content = None if found is None else content_bytes(found)
        if found is not None and content is None:
            self.complete = False
        self.seen.append((reference, content))
        return found
