"""What lab Observations cost a repeat call, in process: fact extraction with the rule
base's warm fact cache, and the whole server-side path (parse -> cards), for the labs
example with 1 Observation and with 1,000 (a long stay: ferritins, transferrin saturations
and eGFRs over years, and unrelated results the rules do not read).

Run with ``python -m bench.labs_cache [label]``; appends ``label``'s figures to
``bench/results/labs_cache.json`` and rewrites ``bench/results/labs_cache.md``. Not part
of the test run: numbers depend on the machine.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from cds.facts import extract_facts
from cds.fhir import collect_record
from cds.hooks import SERVICES, evaluate, parse_request
from cds.rulebase import load_rulebase
from cds.settings import bundled_rules_dir

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EXAMPLE = ROOT / "fhir_examples" / "labs-low-ferritin-amisulpride.json"
ITERATIONS = 500
TODAY = dt.date(2026, 12, 1)

_LOINC = {  # test -> (LOINC code of rules/valuesets/labs.tsv or an unrelated one, value, unit)
    "ferritin": ("2276-4", 40, "ng/mL"),
    "transferrin_saturation": ("2502-3", 18, "%"),
    "egfr": ("98979-8", 70, "mL/min/{1.73_m2}"),
    "unrelated": ("718-7", 13.5, "g/dL"),  # Hemoglobin [Mass/volume] in Blood: not in labs.tsv
}


def request_with(observations: int) -> bytes:
    """The labs example with its Observations replaced by ``observations`` results."""
    request: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    entries = request["prefetch"]["observations"]["entry"]
    template = entries[0]["resource"]
    kinds = list(_LOINC.values())
    made = []
    for i in range(observations):
        code, value, unit = kinds[i % len(kinds)] if observations > 1 else kinds[0]
        observation = copy.deepcopy(template)
        observation["id"] = f"bench-lab-{i}"
        observation["code"]["coding"][0] = {"system": "http://loinc.org", "code": code}
        observation["valueQuantity"] = {"value": value, "unit": unit}
        day = TODAY - dt.timedelta(days=1 + i)
        observation["effectiveDateTime"] = f"{day.isoformat()}T08:00:00Z"
        made.append({"resource": observation})
    request["prefetch"]["observations"]["entry"] = made
    return orjson.dumps(request)


def _timeit(fn: Callable[[], object], n: int) -> dict[str, float]:
    fn()  # warm the caches: a repeat call is what is measured
    samples = []
    for _ in range(n):  # CPU time: this machine's cores are shared, wall time is noise
        start = time.process_time()
        fn()
        samples.append((time.process_time() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 4),
        "p95_ms": round(samples[int(0.95 * len(samples))], 4),
    }


def measure(observations: int) -> dict[str, Any]:
    rulebase = load_rulebase(bundled_rules_dir())
    service = SERVICES["restless-order-select"]
    body = request_with(observations)
    request = parse_request(body)
    patient = str(request.context["patientId"])
    record = collect_record(
        request.context["draftOrders"], request.prefetch, service.required, patient_id=patient
    )
    scope = rulebase.fact_cache.scope(patient, TODAY)
    extraction = extract_facts(record, rulebase.knowledge, TODAY, scope)

    def whole() -> object:
        req = parse_request(body)
        return evaluate(
            req, service, rulebase, source_label="bench", override_system="urn:x", today=TODAY
        )

    result = {
        "observations": observations,
        "first_call_validated": extraction.validated,
        "facts_repeat_call": _timeit(
            lambda: extract_facts(record, rulebase.knowledge, TODAY, scope), ITERATIONS
        ),
        "server_side_repeat_call": _timeit(whole, ITERATIONS),
    }
    rulebase.close()
    return result


def markdown(runs: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "# Lab Observations on a repeat call (in process, warm fact cache)",
        "",
        f"{ITERATIONS} calls each, CPU ms of this process; python "
        f"{platform.python_version()}, {platform.machine()}.",
        "",
        "| run | Observations | facts p50 / p95 | server side p50 / p95 |",
        "|---|---:|---:|---:|",
    ]
    for label, results in runs.items():
        for r in results:
            facts, whole = r["facts_repeat_call"], r["server_side_repeat_call"]
            lines.append(
                f"| {label} | {r['observations']:,} | {facts['p50_ms']} / {facts['p95_ms']} "
                f"| {whole['p50_ms']} / {whole['p95_ms']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "now"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "labs_cache.json"
    runs: dict[str, list[dict[str, Any]]] = (
        json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    )
    runs[label] = [measure(1), measure(1_000)]
    path.write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "labs_cache.md").write_text(markdown(runs), encoding="utf-8")
    print(markdown(runs))


if __name__ == "__main__":
    main()
