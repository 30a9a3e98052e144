"""Long-stay records in process: facts before and after aggregation, and time per stage.

Run with ``python -m bench.large_records``. Writes ``bench/results/large_records.md``.
Shapes (each an order-select raising amisulpride, as in the restless back example):

- ``renewals NxM``: N monthly renewals of one drug (the last active) and M notes of the
  same complaint with onsets spread over 20 days (``bench.soak.long_stay``);
- ``same-start NxM``: N active orders all started the same day and M notes with the same
  onset: the shape that overflowed the engine (each order linked with each note).
"""

from __future__ import annotations

import copy
import datetime as dt
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from bench.latency import cold
from bench.soak import RESULTS, _example, long_stay
from cds.facts import aggregate_facts
from cds.hooks import SERVICES, evaluate, parse_request
from cds.rulebase import load_rulebase
from cds.settings import bundled_rules_dir

RUNS = 5


def same_start(orders: int, complaints: int) -> dict[str, Any]:
    request = _example()
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    note = request["prefetch"]["conditions"]["entry"][0]["resource"]
    request["prefetch"]["medications"]["entry"] = [
        {"resource": {**copy.deepcopy(order), "id": f"o{i}"}} for i in range(orders)
    ]
    request["prefetch"]["conditions"]["entry"] = [
        {"resource": {**copy.deepcopy(note), "id": f"n{i}"}} for i in range(complaints)
    ]
    return request


def measure(name: str, request: dict[str, Any]) -> str:
    rulebase = load_rulebase(bundled_rules_dir())
    service = SERVICES["restless-order-select"]
    timings: dict[str, list[float]] = {}
    try:
        for _ in range(RUNS):
            started = time.perf_counter()
            result = evaluate(  # a record seen first: empty caches every run
                parse_request(request),
                service,
                cold(rulebase),
                source_label="x",
                override_system="x",
            )
            timings.setdefault("total", []).append((time.perf_counter() - started) * 1000)
            for stage, ms in result.timings_ms.items():
                timings.setdefault(stage, []).append(ms)
        facts = result.extraction.facts
        kept = aggregate_facts(facts)
        rules = [c["extension"]["restless-cds-rule"] for c in result.cards]
        median = {stage: round(statistics.median(v), 1) for stage, v in timings.items()}
        return (
            f"| {name} | {len(facts)} | {len(kept)} | {result.engine.fact_count} | "
            f"{median['facts']} | {median['engine']} | {median['total']} | {', '.join(rules)} |"
        )
    finally:
        rulebase.close()


def main() -> None:
    rows = [
        measure("renewals 70x70", long_stay(70, 70)),
        measure("renewals 500x500", long_stay(500, 500)),
        measure("same-start 70x70", same_start(70, 70)),
        measure("same-start 500x500", same_start(500, 500)),
    ]
    text = "\n".join(
        [
            f"Measured {dt.date.today()} on {platform.machine()} (Python "
            f"{platform.python_version()}), median of {RUNS} in-process evaluations.",
            "",
            "| record | facts extracted | facts after aggregation | engine facts (with derived)"
            " | facts ms | engine ms | total ms | cards |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(RESULTS / "large_records.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
