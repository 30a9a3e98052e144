"""What a hook call costs as an EHR's traffic meets it: real HTTP, a real server process.

Run with ``make bench`` (or ``python -m bench.http``; ``--quick`` for shorter runs).
Starts ``restless-cds serve`` (one worker, SQLite in a temporary directory, recording on,
default logging to a file) and, in the same run, the floor app (``bench/floor.py``: the
same uvicorn parsing the same body with orjson and answering no cards). Each is driven
by ``wrk`` (a separate C load generator, keep-alive) with ``bench/post.lua``:

- one connection for latency (p50 / p95 / p99 as the client sees them),
- four connections for throughput (requests per second, one worker),

and the server's CPU time (utime + stime of the process and its children, all threads:
``/proc/<pid>/stat``) is read before and after each run and divided by the requests
served: the figure that does not depend on what else the machine is doing. Also measured:
``--workers 2`` against one worker, and cold start (exec to the first 200 on a hook
call, several trials). Writes ``bench/results/http.{json,md}`` and the README table.

Requests (order-select, the restless back patient):
- ``restless-back``: fhir_examples/restless-back-amisulpride.json (3 resources, 1 card);
- ``patient-50``: the same with 47 unrelated medications and conditions (1 card);
- ``no-candidate-50``: 50 resources, no drug the rules know (no card);
- ``patient-1000``: the same card with 997 unrelated resources.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from bench.latency import EXAMPLE, patient_with

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "post.lua"
SERVICE_PATH = "/cds-services/restless-order-select"
TICKS = os.sysconf("SC_CLK_TCK")
THROUGHPUT_CONNECTIONS = 4
_UNRELATED = ["atorvastatin 20 mg tablet", "metformin 500 mg tablet", "lisinopril 10 mg tablet"]


@dataclass(frozen=True)
class Durations:
    warmup: float
    latency: float
    throughput: float
    cold_starts: int


FULL = Durations(warmup=1.5, latency=6, throughput=5, cold_starts=5)
QUICK = Durations(warmup=0.5, latency=2, throughput=2, cold_starts=2)


def no_candidate(resources: int) -> dict[str, Any]:
    """``resources`` resources and no drug the rules know: the answer is no card."""
    request = patient_with(resources - 3)
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    chart = request["prefetch"]["medications"]["entry"]
    for i, order in enumerate([draft, *(e["resource"] for e in chart)]):
        order["medicationCodeableConcept"] = {"text": _UNRELATED[i % len(_UNRELATED)]}
        order.pop("medicationReference", None)
    return request


def request_bodies() -> dict[str, tuple[bytes, int]]:
    """name -> (body, cards expected)."""
    return {
        "restless-back": (EXAMPLE.read_bytes(), 1),
        "patient-50": (json.dumps(patient_with(47)).encode(), 1),
        "no-candidate-50": (json.dumps(no_candidate(50)).encode(), 0),
        "patient-1000": (json.dumps(patient_with(997)).encode(), 1),
    }


# ---- processes and /proc ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants (all threads of each)."""
    total = 0
    for process in _descendants(pid):
        fields = _stat_fields(process)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICKS


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8])


Headers = Callable[[], dict[str, str]]
"""Extra request headers, made afresh for each probe (a client JWT is good for one call)."""


def _no_headers() -> dict[str, str]:
    return {}


def _post(
    port: int, body: bytes, timeout: float = 10, headers: Headers = _no_headers
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent = {"content-type": "application/json", **headers()}
        connection.request("POST", SERVICE_PATH, body, sent)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _wait_for_200(
    port: int,
    body: bytes,
    process: subprocess.Popen[bytes],
    limit: float,
    headers: Headers = _no_headers,
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering")
        with contextlib.suppress(OSError):
            if _post(port, body, headers=headers)[0] == 200:
                return
        time.sleep(0.01)
    raise RuntimeError("server did not answer 200 in time")


@contextlib.contextmanager
def server(
    command: list[str],
    port: int,
    probe: bytes,
    env: dict[str, str],
    headers: Headers = _no_headers,
) -> Iterator[int]:
    """A server process answering 200 to ``probe``; yields its pid."""
    with tempfile.TemporaryFile(prefix="restless-bench-", suffix=".log") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            _wait_for_200(port, probe, process, limit=60, headers=headers)
            yield process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def service_command(port: int, workers: int = 1) -> list[str]:
    return [
        *(sys.executable, "-m", "cds", "serve", "--port", str(port)),
        *(("--workers", str(workers)) if workers > 1 else ()),
    ]


def floor_command(port: int, workers: int = 1) -> list[str]:
    return [
        *(sys.executable, "-m", "uvicorn", "bench.floor:app", "--port", str(port)),
        *("--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "5"),
        *(("--workers", str(workers)) if workers > 1 else ()),
    ]


def _service_env(directory: Path) -> dict[str, str]:
    return {**os.environ, "RESTLESS_CDS_DATABASE_PATH": str(directory / "cards.db")}


# ---- one wrk run -----------------------------------------------------------------------


def wrk(
    port: int,
    body_file: Path,
    seconds: float,
    connections: int,
    tokens: Path | None = None,
) -> dict[str, Any]:
    command = [
        *("wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"),
        *("-s", str(LUA), f"http://127.0.0.1:{port}{SERVICE_PATH}", "--", str(body_file)),
        *((str(tokens),) if tokens is not None else ()),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH-JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH-JSON "))
    errors = sum(result[k] for k in result if k.endswith("_errors") or k == "timeouts")
    if errors:
        raise RuntimeError(f"wrk saw errors (non-2xx or transport): {result}")
    return result


def measured_run(
    pid: int,
    port: int,
    body_file: Path,
    seconds: float,
    conns: int,
    *,
    tokens: Path | None = None,
) -> dict[str, Any]:
    """One wrk run with the server's CPU, wrk's own CPU and the rest of the machine's."""
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before, total_before = _machine_busy()
    cpu_before = cpu_seconds(pid)
    result = wrk(port, body_file, seconds, conns, tokens)
    time.sleep(0.2)  # writes queued after the last response belong to this run
    server_cpu = cpu_seconds(pid) - cpu_before
    busy_after, total_after = _machine_busy()
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (wrk_after.ru_utime - wrk_before.ru_utime) + (
        wrk_after.ru_stime - wrk_before.ru_stime
    )
    elapsed = (total_after - total_before) / TICKS / (os.cpu_count() or 1)
    others = (busy_after - busy_before) / TICKS - server_cpu - wrk_cpu
    requests = result["requests"]
    return {
        "connections": conns,
        "requests": requests,
        "req_per_s": round(requests / (result["duration_us"] / 1e6), 1),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / requests, 3),
        "p50_ms": result["p50_us"] / 1000,
        "p95_ms": result["p95_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
        "other_processes_cores": round(max(0.0, others) / max(elapsed, 1e-9), 2),
    }


def measure_server(
    pid: int, port: int, bodies: dict[str, Path], durations: Durations
) -> dict[str, dict[str, Any]]:
    rows = {}
    for name, body_file in bodies.items():
        wrk(port, body_file, durations.warmup, 1)
        latency = measured_run(pid, port, body_file, durations.latency, 1)
        throughput = measured_run(
            pid, port, body_file, durations.throughput, THROUGHPUT_CONNECTIONS
        )
        rows[name] = {"latency": latency, "throughput": throughput}
        print(f"  {name}: {latency} / {throughput['req_per_s']} req/s", flush=True)
    return rows


def _check_cards(port: int, bodies: dict[str, tuple[bytes, int]]) -> None:
    for name, (body, expected) in bodies.items():
        status, answer = _post(port, body)
        cards = len(json.loads(answer)["cards"]) if status == 200 else -1
        if cards != expected:
            raise RuntimeError(f"{name}: status {status}, {cards} cards, expected {expected}")


# ---- with client authentication -------------------------------------------------------

ISSUER = "https://ehr.bench.example"
TOKENS_PER_SECOND = 1500
"""More than the service answers a second here: a run must never run out of tokens."""


def _client_key(directory: Path) -> tuple[Any, Path]:
    """A CDS client's ES384 key (the algorithm the CDS Hooks Sandbox signs with) and an
    issuers file trusting it."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "bench", "alg": "ES384"}
    (directory / "jwks.json").write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    issuers = directory / "issuers.json"
    issuers.write_text(
        json.dumps([{"iss": ISSUER, "jwks_file": str(directory / "jwks.json")}]), encoding="utf-8"
    )
    return key, issuers


def _token_file(key: Any, audience: str, count: int, path: Path) -> Path:
    """``count`` client JWTs, each with its own jti, one a line."""
    now = int(time.time())
    lines = (
        jwt.encode(
            {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex},
            key,
            algorithm="ES384",
            headers={"kid": "bench", "typ": "JWT"},
        )
        for _ in range(count)
    )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def measure_authenticated(
    body_file: Path, probe: bytes, durations: Durations, directory: Path
) -> dict[str, Any]:
    """restless-back with a client JWT on every call: signature, claims and the jti
    replay check (written to the store) included, as an EHR in production calls."""
    key, issuers = _client_key(directory)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **_service_env(directory),
        "RESTLESS_CDS_TRUSTED_ISSUERS_FILE": str(issuers),
        "RESTLESS_CDS_PUBLIC_BASE_URL": base,
    }

    def tokens(name: str, seconds: float) -> Path:
        count = int(TOKENS_PER_SECOND * (seconds + 1))
        return _token_file(key, base + SERVICE_PATH, count, directory / f"{name}.tokens")

    warm = tokens("warm", durations.warmup)
    latency_tokens = tokens("latency", durations.latency)
    throughput_tokens = tokens("throughput", durations.throughput)
    probes = directory / "probe.tokens"

    def fresh_token() -> dict[str, str]:
        token = _token_file(key, base + SERVICE_PATH, 1, probes).read_text().strip()
        return {"authorization": f"Bearer {token}"}

    with server(service_command(port), port, probe, env, fresh_token) as pid:
        wrk(port, body_file, durations.warmup, 1, warm)
        latency = measured_run(pid, port, body_file, durations.latency, 1, tokens=latency_tokens)
        throughput = measured_run(
            pid,
            port,
            body_file,
            durations.throughput,
            THROUGHPUT_CONNECTIONS,
            tokens=throughput_tokens,
        )
    return {"latency": latency, "throughput": throughput}


# ---- cold start ------------------------------------------------------------------------


def cold_start(trials: int, probe: bytes, directory: Path) -> list[float]:
    """Seconds from exec to the first 200 on a hook call; trial 1 creates the database."""
    env = _service_env(directory)
    times = []
    for _ in range(trials):
        port = _free_port()
        started = time.monotonic()
        process = subprocess.Popen(
            service_command(port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_200(port, probe, process, limit=60)
            times.append(round(time.monotonic() - started, 3))
        finally:
            process.terminate()
            process.wait(timeout=15)
    return times


# ---- report ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run(durations: Durations) -> dict[str, Any]:
    bodies = request_bodies()
    probe = bodies["restless-back"][0]
    work = Path(tempfile.mkdtemp(prefix="restless-bench-http-"))
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        files = {}
        for name, (body, _) in bodies.items():
            files[name] = work / f"{name}.json"
            files[name].write_bytes(body)
        print("service, one worker", flush=True)
        port = _free_port()
        with server(service_command(port), port, probe, _service_env(work)) as pid:
            _check_cards(port, bodies)
            service = measure_server(pid, port, files, durations)
        print("floor app", flush=True)
        port = _free_port()
        with server(floor_command(port), port, probe, dict(os.environ)) as pid:
            floor = measure_server(pid, port, files, durations)
        print("service, two workers", flush=True)
        port = _free_port()
        two_dir = work / "two"
        two_dir.mkdir()
        with server(service_command(port, 2), port, probe, _service_env(two_dir)) as pid:
            name = "patient-50"
            wrk(port, files[name], durations.warmup, THROUGHPUT_CONNECTIONS)
            two = measured_run(pid, port, files[name], durations.throughput, 4)
        print("floor app, two workers", flush=True)
        port = _free_port()
        with server(floor_command(port, 2), port, probe, dict(os.environ)) as pid:
            wrk(port, files[name], durations.warmup, THROUGHPUT_CONNECTIONS)
            floor_two = measured_run(pid, port, files[name], durations.throughput, 4)
        print("service, one worker, client JWT on every call", flush=True)
        auth_dir = work / "auth"
        auth_dir.mkdir()
        authenticated = measure_authenticated(files["restless-back"], probe, durations, auth_dir)
        print(f"  restless-back with JWT: {authenticated['latency']}", flush=True)
        print("cold start", flush=True)
        cold_dir = work / "cold"
        cold_dir.mkdir()
        cold = cold_start(durations.cold_starts, probe, cold_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one = service["patient-50"]["throughput"]["req_per_s"]
    floor_one = floor["patient-50"]["throughput"]["req_per_s"]
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.monotonic() - started, 1),
        "durations": durations.__dict__,
        "service": service,
        "floor": floor,
        "workers_2": {**two, "ratio_to_one_worker": round(two["req_per_s"] / one, 2)},
        "authenticated": authenticated,
        "floor_workers_2": {
            **floor_two,
            "ratio_to_one_worker": round(floor_two["req_per_s"] / floor_one, 2),
        },
        "cold_start_seconds": cold,
    }


def _loaded(report: dict[str, Any]) -> bool:
    cores = report["machine"]["nproc"] or 1
    others = [
        row[kind]["other_processes_cores"]
        for side in ("service", "floor")
        for row in report[side].values()
        for kind in ("latency", "throughput")
    ]
    return bool(max(others) > 0.25 * cores)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Measured {report['when']} on {m['nproc']} x {m['cpu']} (Python {m['python']}), "
        f"`restless-cds serve` (one worker, SQLite, recording on, default logging) driven "
        f"by wrk over keep-alive HTTP; the whole run took {report['seconds']} s.",
        "",
        "| request | server CPU ms/request | p50 / p95 / p99 ms (1 connection) "
        f"| req/s ({THROUGHPUT_CONNECTIONS} connections) | floor CPU ms/request "
        "| floor p50 ms | floor req/s | req/s ÷ floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in report["service"].items():
        lat, thr = row["latency"], row["throughput"]
        flat, fthr = report["floor"][name]["latency"], report["floor"][name]["throughput"]
        lines.append(
            f"| {name} | {lat['server_cpu_ms_per_request']:.2f} "
            f"| {lat['p50_ms']:.2f} / {lat['p95_ms']:.2f} / {lat['p99_ms']:.2f} "
            f"| {thr['req_per_s']:.0f} | {flat['server_cpu_ms_per_request']:.2f} "
            f"| {flat['p50_ms']:.2f} | {fthr['req_per_s']:.0f} "
            f"| {thr['req_per_s'] / fthr['req_per_s']:.2f} |"
        )
    two = report["workers_2"]
    cold = report["cold_start_seconds"]
    auth, auth_thr = report["authenticated"]["latency"], report["authenticated"]["throughput"]
    lines += [
        "",
        f"- restless-back with a client JWT on every call (ES384, a fresh jti each, checked "
        f"against replay in the store), as an EHR calls in production: "
        f"{auth['server_cpu_ms_per_request']:.2f} ms CPU/request, p50 / p95 / p99 "
        f"{auth['p50_ms']:.2f} / {auth['p95_ms']:.2f} / {auth['p99_ms']:.2f} ms, "
        f"{auth_thr['req_per_s']:.0f} req/s at {THROUGHPUT_CONNECTIONS} connections.",
        f"- `--workers 2`, patient-50, {THROUGHPUT_CONNECTIONS} connections: "
        f"{two['req_per_s']:.0f} req/s, {two['ratio_to_one_worker']:.2f}x one worker "
        f"({two['server_cpu_ms_per_request']:.2f} ms CPU/request over both workers; wrk "
        "shares the same cores); the floor app on this machine: "
        f"{report['floor_workers_2']['ratio_to_one_worker']:.2f}x its one worker, what two "
        "workers can gain here at all.",
        f"- cold start (exec to the first 200 on a hook call, first trial creates the "
        f"database): {', '.join(f'{s:.2f}' for s in cold)} s; median "
        f"{statistics.median(cold):.2f} s.",
        f"- load average before / after: {report['load_average_before']} / "
        f"{report['load_average_after']}.",
    ]
    if _loaded(report):
        lines.append(
            "- **The machine was loaded by other processes during this run** (see "
            "`other_processes_cores` in http.json): latency and req/s are pessimistic; CPU "
            "per request is the figure to compare."
        )
    return "\n".join(lines) + "\n"


def _quote_in_readme(table: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench-http:start -->\n", "<!-- bench-http:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        readme.write_text(head + start + table + end + tail, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (make bench installs it: apt-get install wrk)")
    report = run(QUICK if args.quick else FULL)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "http.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    table = markdown(report)
    (RESULTS / "http.md").write_text(table, encoding="utf-8")
    if not args.no_readme:
        _quote_in_readme(table)
    print(table)


if __name__ == "__main__":
    main()
