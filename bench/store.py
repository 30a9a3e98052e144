"""The feedback store's share of a hook call: CPU per request and SQL statements per request.

Run with ``python -m bench.store``. Writes ``bench/results/store.json`` and ``store.md``.
Not part of the test run: the numbers depend on the machine (shared, so CPU time of this
process is measured, not wall clock).

Measured, on a fresh SQLite file:
- ``suppression read``: ``CardLedger.silenced`` for one patient, as the hook path calls it
  (event loop, thread hop included), process CPU per call; from the worker's cache, and
  with the cache off (every call a store read);
- ``card write``: ``CardLedger.record_soon`` of one card per request, then ``settle``;
  process CPU per card, all threads (the writer's ``BEGIN IMMEDIATE`` and commit included);
- statements per request: every SQL statement the store's engine executes during 200
  calls of each kind through the app (in-process ASGI client, so the count is exact),
  with the card writes settled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from cds.app import create_app
from cds.feedback import FeedbackStore, IssuedCardRecord, pseudonymise
from cds.hooks.feedback import CardLedger
from cds.settings import Settings, bundled_rules_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EXAMPLE = ROOT / "fhir_examples" / "restless-back-amisulpride.json"
NO_CARD = ROOT / "fhir_examples" / "mechanical-back-pain-amisulpride.json"
SERVICE = "/cds-services/restless-order-select"
CALLS = 2000
HTTP_CALLS = 200


def _card(n: int, patient: str) -> IssuedCardRecord:
    return IssuedCardRecord(
        card_uuid=str(uuid.uuid4()),
        service_id="restless-order-select",
        rule_id="dose-review.draft-order",
        rules_version="bench",
        hook_instance=f"hook-{n}",
        issued_at=dt.datetime.now(dt.UTC),
        patient_pseudonym=patient,
        suppress_days=30.0,
        suppress_reasons=("already-aware",),
        explanation={"rule": "dose-review.draft-order", "facts": [{"code": "C0001", "n": n}]},
    )


async def _read_cpu_us(ledger: CardLedger) -> float:
    patient = pseudonymise(b"bench-key", "pt-bench")
    now = dt.datetime.now(dt.UTC)
    for _ in range(50):  # warm: pool, compiled-statement cache
        await ledger.silenced(patient, now)
    started = time.process_time()
    for _ in range(CALLS):
        await ledger.silenced(patient, now)
    return (time.process_time() - started) / CALLS * 1e6


async def _ledger_figures(ledger: CardLedger, uncached: CardLedger) -> dict[str, float]:
    read_us = await _read_cpu_us(ledger)
    miss_us = await _read_cpu_us(uncached)
    patient = pseudonymise(b"bench-key", "pt-bench")
    started = time.process_time()
    for n in range(CALLS):
        ledger.record_soon([_card(n, patient)])
        await asyncio.sleep(0)  # the next request arrives
    await ledger.settle()
    write_us = (time.process_time() - started) / CALLS * 1e6
    return {
        "suppression_read_cpu_us": round(read_us, 1),
        "suppression_read_uncached_cpu_us": round(miss_us, 1),
        "card_write_cpu_us": round(write_us, 1),
    }


def ledger_figures(database: Path) -> dict[str, float]:
    store = FeedbackStore(f"sqlite:///{database}")
    try:
        ledger = CardLedger(store)
        uncached = CardLedger(store, suppression_ttl=0)
        try:
            return asyncio.run(_ledger_figures(ledger, uncached))
        finally:
            ledger.close()
            uncached.close()
    finally:
        store.close()


def _body(path: Path, hook_instance: str, patient: str) -> dict[str, Any]:
    """The example moved to ``patient`` (every reference), under ``hook_instance``."""
    text = path.read_text(encoding="utf-8")
    old = json.loads(text)["context"]["patientId"]
    body: dict[str, Any] = json.loads(text.replace(f'"Patient/{old}"', f'"Patient/{patient}"'))
    body["hookInstance"] = hook_instance
    body["context"]["patientId"] = patient
    return body


def statements_per_request(database: Path) -> dict[str, float]:
    settings = Settings(rules_dir=bundled_rules_dir(), database_path=database, log_level="warning")
    app = create_app(settings)
    counted: list[str] = []
    kinds: dict[str, float] = {}
    with TestClient(app) as client:
        engine = app.state.card_ledger.store.engine
        event.listen(engine, "before_cursor_execute", lambda *a: counted.append(a[2]))

        def run(name: str, call: Any) -> None:
            for n in range(20):  # warm
                call(n)
            _settle(client)
            counted.clear()
            for n in range(HTTP_CALLS):
                call(n)
            _settle(client)
            kinds[name] = round(len(counted) / HTTP_CALLS, 2)

        run("discovery", lambda n: client.get("/cds-services"))
        run(
            "no card",
            lambda n: client.post(SERVICE, json=_body(NO_CARD, str(uuid.uuid4()), "pt-none")),
        )
        same = str(uuid.uuid4())
        run(
            "card, one hook instance repeated",
            lambda n: client.post(SERVICE, json=_body(EXAMPLE, same, "pt-same")),
        )
        run(
            "card, a new hook instance and patient each call",
            lambda n: client.post(SERVICE, json=_body(EXAMPLE, str(uuid.uuid4()), f"pt-{n}")),
        )
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT count(*) FROM issued_cards").scalar()
        kinds["issued_cards rows after the runs"] = float(rows or 0)
    return kinds


def _settle(client: TestClient) -> None:
    assert client.portal is not None
    ledger: CardLedger = client.app.state.card_ledger  # type: ignore[attr-defined]
    client.portal.call(ledger.settle)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="restless-store-bench-") as work:
        figures = ledger_figures(Path(work) / "ledger.db")
        statements = statements_per_request(Path(work) / "app.db")
    result = {
        "measured": dt.date.today().isoformat(),
        "machine": f"{platform.machine()} (Python {platform.python_version()})",
        "calls": CALLS,
        **figures,
        "statements_per_request": statements,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "store.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"Store share measured {result['measured']} on {result['machine']}, SQLite, "
        "process CPU time (all threads):",
        "",
        f"- suppression read: {figures['suppression_read_cpu_us']} µs CPU per call (same "
        f"patient, cached); {figures['suppression_read_uncached_cpu_us']} µs with the cache "
        "off (a store read in a worker thread)",
        f"- card write: {figures['card_write_cpu_us']} µs CPU per card (one card per request)",
        "",
        "| calls through the app | SQL statements per request |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in statements.items()),
    ]
    text = "\n".join(lines) + "\n"
    (RESULTS / "store.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
