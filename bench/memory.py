"""Where a long run's memory goes, in process: the app driven through its ASGI interface
(Starlette's ``TestClient``, lifespan included) by many varied hook calls, with
``tracemalloc`` snapshots compared by traceback and glibc's own accounting beside RSS.

Run with ``python -m bench.memory --requests 50000`` (``--no-rule-edits`` to leave the
rules alone, ``--no-tracemalloc`` for RSS and malloc figures without its overhead).
Calls: every example under ``fhir_examples/`` moved to one of ``--patients`` patients and
given a fresh hook instance or the patient's last one, feedback on cards received, and the
soak's large and hostile bodies; a rule file is rewritten (valid and invalid in turn)
every ``--edit-every`` calls and the reload waited for. Every ``--every`` calls a row:
RSS, the Python objects tracemalloc sees, glibc's heap in use and free, and the sizes of
the service's bounded structures. Between the snapshot at ``--first`` calls and the last,
the allocation sites that grew most are listed by traceback.

Writes ``bench/results/<--output>.{json,md}`` (default ``memory``). tracemalloc makes a
call 5-10 times slower. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from bench.soak import (
    EXAMPLE,
    INSTANCE,
    RULE_FILE,
    SUMMARY,
    _bypass,
    _long_note,
    _nan_dose,
    long_stay,
)
from cds.app import create_app
from cds.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SERVICES = {
    "order-select": "restless-order-select",
    "order-sign": "restless-order-sign",
    "patient-view": "restless-patient-view",
}


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


LIBC = _libc()


def malloc_mib() -> dict[str, float]:
    """glibc's view: bytes handed out (in use), held free in its arenas, and mmapped."""
    if LIBC is None or not hasattr(LIBC, "mallinfo2"):
        return {}
    LIBC.mallinfo2.restype = _MallInfo2
    info = LIBC.mallinfo2()
    mib = 1024 * 1024
    return {
        "malloc_in_use_mib": round((info.uordblks + info.hblkhd) / mib, 1),
        "malloc_free_mib": round(info.fordblks / mib, 1),
        "malloc_mmap_mib": round(info.hblkhd / mib, 1),
    }


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _moved(text: str, patient: str) -> dict[str, Any]:
    """An example's call for another patient (every reference moved), hook instance
    ``INSTANCE``, and no FHIR-server fallback for labs (an empty observations key)."""
    request: dict[str, Any] = json.loads(text)
    old = request["context"]["patientId"]
    request = json.loads(text.replace(f'"Patient/{old}"', f'"Patient/{patient}"'))
    request["context"]["patientId"] = patient
    if isinstance(request["prefetch"].get("patient"), dict):
        request["prefetch"]["patient"]["id"] = patient
    request["hookInstance"] = INSTANCE.decode()
    request["prefetch"].setdefault("observations", None)
    return request


def example_calls(patients: int) -> list[tuple[str, bytes]]:
    """(service path, body) for every example and patient."""
    calls = []
    for path in sorted((ROOT / "fhir_examples").glob("*.json")):
        if path.name.endswith(".expected.json"):
            continue
        text = path.read_text(encoding="utf-8")
        service = SERVICES[json.loads(text)["hook"]]
        for index in range(patients):
            body = json.dumps(_moved(text, f"mem-pt-{index}")).encode()
            calls.append((f"/cds-services/{service}", body))
    return calls


def odd_calls() -> list[tuple[str, bytes]]:
    """The soak's large and hostile bodies (each once in a while)."""
    service = "/cds-services/restless-order-select"
    deep = b'{"hook":"order-select","hookInstance":"x","context":' + b"[" * 50_000
    return [
        (service, json.dumps(long_stay(200, 200)).encode()),
        (service, json.dumps(_long_note()).encode()),
        (service, _nan_dose()),
        (service, b'{"hook": "order-select",'),
        (service, deep + b"]" * 50_000 + b"}"),
        (service, json.dumps(_bypass()).encode()),
        ("/cds-services/nope", EXAMPLE.read_bytes()),
    ]


RECENT_CALLS = 200
"""Calls whose hook instance the driver may repeat (recently sent ones)."""


class Driver:
    def __init__(self, client: TestClient, patients: int, seed: int) -> None:
        self.client = client
        self.rng = random.Random(seed)
        self.calls = example_calls(patients)
        self.odd = odd_calls()
        self.last: dict[int, bytes] = {}
        self.cards: list[dict[str, Any]] = []
        self.statuses: dict[int, int] = {}

    def one(self) -> None:
        roll = self.rng.random()
        if roll < 0.03:
            path, body = self.rng.choice(self.odd)
        elif roll < 0.1 and self.cards:
            self._feedback()
            return
        else:
            index = self.rng.randrange(len(self.calls))
            path, body = self.calls[index]
            if roll < 0.35 and index in self.last:
                body = self.last[index]  # the same hook instance again
            else:
                body = body.replace(INSTANCE, str(uuid.uuid4()).encode())
                self.last[index] = body
                while len(self.last) > RECENT_CALLS:  # the driver's own memory stays flat
                    del self.last[next(iter(self.last))]
        response = self.client.post(path, content=body)
        self._count(response.status_code)
        if response.status_code == 200 and "cards" in response.json():
            self.cards = response.json()["cards"][:1] or self.cards

    def _feedback(self) -> None:
        card = self.cards.pop()
        item: dict[str, Any] = {"card": card["uuid"], "outcomeTimestamp": "2026-12-05T10:00:00Z"}
        reasons = card.get("overrideReasons") or []
        if reasons and self.rng.random() < 0.5:
            item |= {"outcome": "overridden", "overrideReason": {"reason": reasons[0]}}
        else:
            item |= {"outcome": "accepted"}
            if card.get("suggestions"):
                item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
        service = "/cds-services/restless-order-select/feedback"
        response = self.client.post(service, json={"feedback": [item]})
        self._count(response.status_code)

    def _count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def structures(app: Any) -> dict[str, float]:
    """Sizes of the service's bounded structures right now (entries and KiB; the ledger's
    two are private, read here for diagnosis only)."""
    rules = app.state.rules.current
    ledger = app.state.card_ledger
    return {
        "fact_cache": len(rules.fact_cache),
        "fact_cache_kib": round(rules.fact_cache.size_bytes / 1024, 1),
        "engine_results": len(rules.engine_results),
        "engine_results_kib": round(rules.engine_results.size_bytes / 1024, 1),
        "suppressions": len(ledger._suppressions),
        "recorded": len(ledger._recorded),
        "py_blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
    }


def _edit(rules_dir: Path, index: int) -> None:
    path = rules_dir / RULE_FILE
    original = (ROOT / "rules" / RULE_FILE).read_text(encoding="utf-8")
    if index % 2:
        text = original.replace(SUMMARY, f'summary: "Restless {{region}} on {{drug}}: v{index}"')
    else:
        text = original.replace("priority: 10", f"priority: broken-{index}", 1)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def top_growth(
    first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, count: int
) -> list[dict[str, Any]]:
    noise = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    ]
    first, last = first.filter_traces(noise), last.filter_traces(noise)
    stats = last.compare_to(first, "traceback")
    rows = []
    for stat in stats[:count]:
        frames = [
            f"{frame.filename.replace(str(ROOT) + '/', '')}:{frame.lineno}"
            for frame in stat.traceback
        ]
        rows.append(
            {
                "growth_kib": round(stat.size_diff / 1024, 1),
                "size_kib": round(stat.size / 1024, 1),
                "blocks_growth": stat.count_diff,
                "where": frames[-12:],
            }
        )
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="restless-memory-"))
    rules_dir = work / "rules"
    shutil.copytree(ROOT / "rules", rules_dir)
    settings = load_settings(
        rules_dir=rules_dir,
        database_path=work / "memory.db",
        reload_interval_seconds=0.05,
        card_retention_days=args.retention_seconds / 86400,
        prune_interval_seconds=2.0,
        fhir_allowed_servers=["http://127.0.0.1:9/allowed/fhir"],
        log_level="error",
    )
    app = create_app(settings)
    samples: list[dict[str, Any]] = []
    snapshots: dict[str, tracemalloc.Snapshot] = {}
    edits = 0
    started = time.monotonic()
    with TestClient(app) as client:
        driver = Driver(client, args.patients, seed=1)
        for _ in range(args.warmup):
            driver.one()
        if args.tracemalloc:
            tracemalloc.start(args.frames)
        for done in range(1, args.requests + 1):
            driver.one()
            if args.rule_edits and done % args.edit_every == 0:
                edits += 1
                _edit(rules_dir, edits)
                time.sleep(0.2)  # the watcher polls every 50 ms; compiling takes longer
            if done % args.every == 0 or done == args.requests:
                gc.collect()
                row = {"requests": done, "seconds": round(time.monotonic() - started, 1)}
                row |= {"rss_mib": rss_mib(), **malloc_mib(), **structures(app)}
                if args.tracemalloc:
                    row["traced_mib"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
                samples.append(row)
                print(json.dumps(row), flush=True)
                if args.tracemalloc and done in (args.first, args.requests):
                    snapshots[str(done)] = tracemalloc.take_snapshot()
        statuses = dict(driver.statuses)
    shutil.rmtree(work, ignore_errors=True)
    growth = []
    if len(snapshots) == 2:
        growth = top_growth(snapshots[str(args.first)], snapshots[str(args.requests)], args.top)
    return {
        "requests": args.requests,
        "warmup": args.warmup,
        "rule_edits": edits,
        "statuses": statuses,
        "samples": samples,
        "growth_between": [args.first, args.requests],
        "top_growth": growth,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"In-process memory run: {result['requests']} calls after {result['warmup']} warm-up, "
        f"{result['rule_edits']} rule edits; statuses {result['statuses']}.",
        "",
    ]
    keys = [k for k in result["samples"][0] if k != "seconds"]
    lines += ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
    lines += ["| " + " | ".join(str(s.get(k, "")) for k in keys) + " |" for s in result["samples"]]
    if result["top_growth"]:
        first, last = result["growth_between"]
        lines += ["", f"Allocation sites that grew most between {first} and {last} calls:", ""]
        for row in result["top_growth"]:
            lines.append(
                f"- +{row['growth_kib']} KiB ({row['size_kib']} KiB now, "
                f"{row['blocks_growth']:+} blocks): " + " <- ".join(reversed(row["where"][-4:]))
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--first", type=int, default=5_000)
    parser.add_argument("--every", type=int, default=5_000)
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--edit-every", type=int, default=500)
    parser.add_argument("--retention-seconds", type=float, default=30.0)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-rule-edits", dest="rule_edits", action="store_false")
    parser.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false")
    parser.add_argument("--output", default="memory")
    args = parser.parse_args()
    result = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (RESULTS / f"{args.output}.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
