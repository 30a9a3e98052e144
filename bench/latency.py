"""Where the time of an order-select call goes, stage by stage, in process (and a plain
httpx round trip). Not the user's figure: that is ``bench/http.py`` (``make bench``).

Run with ``make bench-stages`` (or ``python -m bench.latency``). Writes
``bench/results/latency.json`` and ``bench/results/latency.md``; the README quotes the
Markdown. Not part of the test run: numbers depend on the machine.

Requests measured:
- ``restless-back``: fhir_examples/restless-back-amisulpride.json (3 resources);
- ``patient-50``: the same patient with 47 unrelated resources added (non-provoking
  medications and unrelated conditions), the size the latency target is set for.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.engine.reuse import ResultReuse
from cds.facts import extract_facts, to_engine
from cds.facts.cache import FactCache
from cds.feedback import FeedbackStore, pseudonymise
from cds.fhir import collect_record
from cds.hooks import SERVICES, CardsResponse, evaluate, parse_request
from cds.hooks.feedback import issued_records
from cds.rulebase import RuleBase, load_rulebase
from cds.settings import bundled_rules_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EXAMPLE = ROOT / "fhir_examples" / "restless-back-amisulpride.json"
ITERATIONS = 2000
HTTP_REQUESTS = 1000

_OTHER_DRUGS = ["atorvastatin 20 mg", "metformin 500 mg", "lisinopril 10 mg", "omeprazole 20 mg"]
_OTHER_CONDITIONS = ["Essential hypertension", "Hyperlipidaemia", "Gastro-oesophageal reflux"]


def patient_with(extra: int) -> dict[str, Any]:
    """The restless back request plus ``extra`` unrelated MedicationRequests/Conditions."""
    request: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    meds = request["prefetch"]["medications"]["entry"]
    conditions = request["prefetch"]["conditions"]["entry"]
    for i in range(extra):
        if i % 2 == 0:
            med = copy.deepcopy(meds[0]["resource"])
            med["id"] = f"other-med-{i}"
            med["medicationCodeableConcept"] = {"text": _OTHER_DRUGS[i % len(_OTHER_DRUGS)]}
            meds.append({"resource": med})
        else:
            cond = copy.deepcopy(conditions[0]["resource"])
            cond["id"] = f"other-condition-{i}"
            cond["code"] = {"text": _OTHER_CONDITIONS[i % len(_OTHER_CONDITIONS)]}
            cond.pop("note", None)
            conditions.append({"resource": cond})
    return request


def _timeit(fn: Callable[[], object], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 4),
        "p95_ms": round(samples[int(0.95 * len(samples))], 4),
        "p99_ms": round(samples[int(0.99 * len(samples))], 4),
        "mean_ms": round(statistics.fmean(samples), 4),
    }


def in_process(name: str, body: bytes) -> dict[str, Any]:
    """Each stage alone, then the whole server-side path (parse -> JSON out)."""
    rulebase = load_rulebase(bundled_rules_dir())
    service = SERVICES["restless-order-select"]
    request = parse_request(body)
    patient = request.context["patientId"]
    record = collect_record(
        request.context["draftOrders"], request.prefetch, service.required, patient_id=patient
    )
    extraction = extract_facts(record, rulebase.knowledge, time_today())
    facts = [to_engine(f) for f in extraction.facts]
    result = evaluate(
        request, service, rulebase, source_label="restless-cds", override_system="urn:x"
    )
    raw_resources = [*record.draft_orders, *record.medication_requests, *record.conditions]

    def validate_everything() -> None:
        for raw in raw_resources:
            model = MedicationRequest if raw["resourceType"] == "MedicationRequest" else Condition
            model.model_validate(raw)

    def whole(first_call: bool = False) -> bytes:
        req = parse_request(body)
        base = cold(rulebase) if first_call else rulebase
        res = evaluate(req, service, base, source_label="restless-cds", override_system="urn:x")
        return (
            CardsResponse.model_validate({"cards": res.cards})
            .model_dump_json(exclude_none=True)
            .encode()
        )

    store_dir = tempfile.mkdtemp(prefix="restless-bench-")
    store = FeedbackStore(f"sqlite:///{store_dir}/bench.db")
    pseudonym = pseudonymise(b"bench-key", "rbs-50m")

    def record_card() -> None:
        card = {**result.cards[0], "uuid": str(uuid.uuid4())}
        store.record_cards(
            issued_records(
                [card],
                service_id=service.id,
                hook_instance="bench",
                patient_pseudonym=pseudonym,
                rulebase=rulebase,
                now=dt.datetime.now(dt.UTC),
            )
        )

    stages = {
        "parse_request": _timeit(lambda: parse_request(body), ITERATIONS),
        "collect_resources": _timeit(
            lambda: collect_record(
                request.context["draftOrders"],
                request.prefetch,
                service.required,
                patient_id=patient,
            ),
            ITERATIONS,
        ),
        "facts_incl_fhir_validation": _timeit(
            lambda: extract_facts(record, rulebase.knowledge, time_today()), ITERATIONS
        ),
        "engine": _timeit(lambda: rulebase.engine.evaluate(facts), ITERATIONS),
        "cards_and_json": _timeit(
            lambda: CardsResponse.model_validate({"cards": result.cards}).model_dump_json(
                exclude_none=True
            ),
            ITERATIONS,
        ),
        "server_side_total_first_call": _timeit(lambda: whole(first_call=True), ITERATIONS),
        "server_side_total_repeat_call": _timeit(whole, ITERATIONS),
        "feedback_suppression_lookup_sqlite": _timeit(
            lambda: store.suppressed_rules(pseudonym, dt.datetime.now(dt.UTC)), ITERATIONS
        ),
        "feedback_record_card_sqlite": _timeit(record_card, ITERATIONS // 4),
        "reference_full_fhir_validation_of_all": _timeit(validate_everything, ITERATIONS // 4),
    }
    rulebase.close()
    store.close()
    shutil.rmtree(store_dir, ignore_errors=True)
    return {
        "request": name,
        "resources": len(raw_resources),
        "validated": extraction.validated,
        "skipped_by_triage": extraction.skipped,
        "facts": len(facts),
        "cards": len(result.cards),
        "stages": stages,
    }


def cold(rulebase: RuleBase) -> RuleBase:
    """The rule base with empty fact and engine-result caches: a record seen first."""
    return dataclasses.replace(
        rulebase, fact_cache=FactCache(rulebase.version), engine_results=ResultReuse()
    )


def time_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def over_http(bodies: dict[str, bytes]) -> dict[str, Any]:
    """Sequential keep-alive requests to a real server process on loopback."""
    port = _free_port()
    database = Path(tempfile.mkdtemp(prefix="restless-bench-")) / "serve.db"
    server = subprocess.Popen(
        [sys.executable, "-m", "cds", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, "RESTLESS_CDS_DATABASE_PATH": str(database)},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=5) as client:
            for _ in range(100):
                try:
                    client.get("/cds-services")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            results = {}
            for name, body in bodies.items():
                headers = {"content-type": "application/json"}

                def call(body: bytes = body, headers: dict[str, str] = headers) -> None:
                    response = client.post(
                        "/cds-services/restless-order-select", content=body, headers=headers
                    )
                    response.raise_for_status()

                for _ in range(50):
                    call()
                results[name] = _timeit(call, HTTP_REQUESTS)
            return results
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(database.parent, ignore_errors=True)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Measured {report['when']} on {report['machine']} (Python {report['python']}), "
        f"{ITERATIONS} in-process iterations, {HTTP_REQUESTS} HTTP requests per row.",
        "",
        "| stage (p50 / p95 ms) | " + " | ".join(r["request"] for r in report["in_process"]) + " |",
        "|---|" + "---|" * len(report["in_process"]),
    ]
    for stage in report["in_process"][0]["stages"]:
        cells = [
            f"{r['stages'][stage]['p50_ms']:.3f} / {r['stages'][stage]['p95_ms']:.3f}"
            for r in report["in_process"]
        ]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    http = [report["http"][r["request"]] for r in report["in_process"]]
    http_cells = [f"{h['p50_ms']:.3f} / {h['p95_ms']:.3f}" for h in http]
    lines.append("| HTTP round trip (client-side) | " + " | ".join(http_cells) + " |")
    lines.append("")
    for r in report["in_process"]:
        lines.append(
            f"- {r['request']}: {r['resources']} resources, {r['validated']} validated, "
            f"{r['skipped_by_triage']} skipped by triage, {r['facts']} facts, {r['cards']} card(s)"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    bodies = {
        "restless-back": EXAMPLE.read_bytes(),
        "patient-50": json.dumps(patient_with(47)).encode(),
    }
    report = {
        "when": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "in_process": [in_process(name, body) for name, body in bodies.items()],
        "http": over_http(bodies),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latency.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    table = markdown(report)
    (RESULTS / "latency.md").write_text(table, encoding="utf-8")
    _quote_in_readme(table)
    print(table)


def _quote_in_readme(table: str) -> None:
    """Replace the README's bench section with the latest table."""
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(head + start + table + end + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
