"""What metrics cost a hook call: the metric updates one order-select call makes
(request counter and latency, four stage histograms, a store timing, one card, the
engine-session gauge), timed in a loop, in single-process and multiprocess mode.

Run with ``python -m bench.metrics_overhead``; writes ``bench/results/metrics.json`` and
``bench/results/metrics.md``. Not part of the test run: numbers depend on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CALLS = 20_000

_PROBE = f"""
import time
from cds.observability import metrics
def one_call():
    metrics.count_request("restless-order-select", 200)
    metrics.observe_stage("request", 0.004)
    for stage in ("record", "facts", "engine", "cards", "store"):
        metrics.observe_stage(stage, 0.001)
    with metrics.engine_sessions():
        pass
    metrics.count_card("dose-review-antipsychotic", "warning")
for _ in range(1000):
    one_call()
start = time.perf_counter()
for _ in range({CALLS}):
    one_call()
print((time.perf_counter() - start) / {CALLS} * 1e6)
"""


def _measure(multiprocess: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with tempfile.TemporaryDirectory() as directory:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = directory
        output = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
        )
    return float(output.stdout.strip())


def main() -> None:
    single = min(_measure(False) for _ in range(3))
    multi = min(_measure(True) for _ in range(3))
    RESULTS.mkdir(exist_ok=True)
    result = {
        "calls": CALLS,
        "single_process_us": round(single, 1),
        "multiprocess_us": round(multi, 1),
    }
    (RESULTS / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    table = (
        "| mode | metric updates per hook call |\n|---|---|\n"
        f"| one process | {single:.1f} µs |\n"
        f"| `--workers N` (multiprocess files) | {multi:.1f} µs |\n"
    )
    (RESULTS / "metrics.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
