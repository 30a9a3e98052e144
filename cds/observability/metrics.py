"""Every Prometheus metric of the service, defined once, with small functions the other
layers call (``count_card(rule, indicator)``...), so that adding a count is one line.

With ``--workers N``, ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start
and ``/metrics`` sums every worker's files (prometheus-client's multiprocess mode), so any
worker answers with the whole service's view. Label values are bounded sets (service ids,
rule ids, reasons chosen here), never request content.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "CONTENT_TYPE_LATEST",
    "count_card",
    "count_card_records_dropped",
    "count_feedback",
    "count_prefetch_fallback",
    "count_refusal",
    "count_reload",
    "count_request",
    "count_skipped_resource",
    "count_store_failure",
    "engine_sessions",
    "exposition",
    "observe_stage",
    "stage_timer",
]

_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("cds_requests_total", "HTTP requests answered", ["service", "status"])
STAGE_SECONDS = Histogram(
    "cds_stage_seconds",
    "Time per stage of a hook call (request, facts, engine, cards, store)",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
CARDS = Counter("cds_cards_total", "Cards returned", ["rule", "indicator"])
PREFETCH_FALLBACK = Counter(
    "cds_prefetch_fallback_total", "FHIR-server fetches of missing prefetch", ["outcome"]
)
REFUSALS = Counter(
    "cds_refusals_total", "Calls refused (401, 412, 413, 503...)", ["status", "reason"]
)
ENGINE_SESSIONS = Gauge(
    "cds_engine_sessions_in_use",
    "Rule-engine sessions evaluating right now",
    multiprocess_mode="livesum",
)
RELOADS = Counter("cds_rule_reloads_total", "Rule-file reloads", ["outcome"])
STORE_FAILURES = Counter(
    "cds_store_failures_total", "Feedback-store operations that failed", ["operation", "kind"]
)
CARD_RECORDS_DROPPED = Counter(
    "cds_card_records_dropped_total",
    "Issued-card records not written (feedback on those cards is refused)",
    ["reason"],
)
FEEDBACK = Counter(
    "cds_feedback_total", "Feedback items received", ["rule", "outcome", "override_reason"]
)
SKIPPED = Counter("cds_resources_skipped_total", "Input resources skipped", ["reason"])


def count_request(service: str, status: int) -> None:
    REQUESTS.labels(service, str(status)).inc()


def observe_stage(stage: str, seconds: float) -> None:
    STAGE_SECONDS.labels(stage).observe(seconds)


@contextmanager
def stage_timer(stage: str) -> Iterator[None]:
    """Time the enclosed block as ``stage``."""
    start = perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage).observe(perf_counter() - start)


def count_card(rule: str, indicator: str) -> None:
    CARDS.labels(rule, indicator).inc()


def count_prefetch_fallback(outcome: str) -> None:
    """``outcome``: not-needed, fetched, refused, failed."""
    PREFETCH_FALLBACK.labels(outcome).inc()


def count_refusal(status: int, reason: str) -> None:
    REFUSALS.labels(str(status), reason).inc()


@contextmanager
def engine_sessions() -> Iterator[None]:
    """Count the enclosed block as one engine session in use."""
    ENGINE_SESSIONS.inc()
    try:
        yield
    finally:
        ENGINE_SESSIONS.dec()


def count_reload(outcome: str) -> None:
    """``outcome``: ok or refused."""
    RELOADS.labels(outcome).inc()


def count_store_failure(operation: str, kind: str) -> None:
    """``operation``: suppression-read, card-write, feedback, token-replay, explanation,
    dashboard; ``kind``: timeout, error."""
    STORE_FAILURES.labels(operation, kind).inc()


def count_card_records_dropped(reason: str, records: int) -> None:
    """``reason``: queue-full, store-error, write-error, shutdown."""
    CARD_RECORDS_DROPPED.labels(reason).inc(records)


def count_feedback(rule: str, outcome: str, override_reason: str | None) -> None:
    FEEDBACK.labels(rule, outcome, override_reason or "").inc()


def count_skipped_resource(reason: str) -> None:
    SKIPPED.labels(reason).inc()


def exposition() -> bytes:
    """The text format of every metric: all workers' in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
