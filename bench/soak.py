"""Soak: a real server under a bounded mix of good, large and hostile calls, with rule
edits (hot reload) and a database pause, reporting what a bad day would show.

Run with ``make soak`` (or ``python -m bench.soak --seconds 60``). Starts ``restless-cds
serve`` on a loopback port with a copy of the bundled rules and a fresh SQLite file, then
for ``--seconds``:

- client authentication is on (one trusted ES384 issuer): every call carries a freshly
  signed JWT, except the hostile-token kinds;
- ``--clients`` threads send calls from a weighted mix, each kind with the status it must
  get (good 200, a 500 x 500 long-stay record 200, a 60 KB complaint note 200, NaN dose
  400, malformed JSON 400, JSON nested 50,000 deep 400, a 3 MB body 413, an allowlist
  bypass 412, an unknown service 404, a JWT whose payload nests 5,000 deep 401, a JWT that
  is not base64 401, a replayed JWT 401); any other status or a transport error is a
  failure;
- a probe thread GETs discovery every 100 ms: its slowest answer is the worst stall a
  cheap call met behind the others (the server is one worker);
- an editor rewrites a rule file every second, valid and invalid in turn (atomic saves);
- a third of the way in, the SQLite file is locked exclusively for 3 s.

Writes ``bench/results/soak.md`` and ``soak.json``: requests, failures by kind and
status, p50/p99/max per kind, the worst stall, the server's RSS at start and end, and the
server's log volume. Not part of ``make test``: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import datetime as dt
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EXAMPLE = ROOT / "fhir_examples" / "restless-back-amisulpride.json"
SERVICE = "/cds-services/restless-order-select"
ALLOWED = "http://127.0.0.1:9/allowed/fhir"  # nothing listens: only the check is exercised
RULE_FILE = "40-drug-induced-restless-syndrome.yaml"
SUMMARY = 'summary: "Restless {region} on {drug}: review the dose before raising it"'


def _example() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return value


def long_stay(orders: int, complaints: int) -> dict[str, Any]:
    """Monthly renewals of amisulpride (the last active) and repeated complaint notes."""
    request = _example()
    order = request["prefetch"]["medications"]["entry"][0]["resource"]
    note = request["prefetch"]["conditions"]["entry"][0]["resource"]
    start = dt.date(2026, 10, 22) - dt.timedelta(days=30 * (orders - 1))
    entries = []
    for index in range(orders):
        renewal = copy.deepcopy(order)
        renewal["id"] = f"renewal-{index}"
        renewal["authoredOn"] = (start + dt.timedelta(days=30 * index)).isoformat()
        if index < orders - 1:
            renewal["status"] = "completed"
        entries.append({"resource": renewal})
    notes = []
    for index in range(complaints):
        repeat = copy.deepcopy(note)
        repeat["id"] = f"note-{index}"
        repeat["onsetDateTime"] = (dt.date(2026, 11, 5) + dt.timedelta(days=index % 20)).isoformat()
        notes.append({"resource": repeat})
    request["prefetch"]["medications"]["entry"] = entries
    request["prefetch"]["conditions"]["entry"] = notes
    return request


def _long_note() -> dict[str, Any]:
    request = _example()
    note = request["prefetch"]["conditions"]["entry"][0]["resource"]["note"][0]
    note["text"] = "restless and uncomfortable back when lying down " * 1250  # ~60 KB
    return request


def _nan_dose() -> bytes:
    request = _example()
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 424242.25
    return json.dumps(request).replace("424242.25", "NaN").encode()


def _bypass() -> dict[str, Any]:
    request = _example()
    del request["prefetch"]
    request["fhirServer"] = ALLOWED + "/%2e%2e/%2e%2e/other/fhir"
    return request


ISSUER = "https://soak-ehr.example.org"


@dataclass(frozen=True)
class Signer:
    """Signs a fresh client JWT per call, as an EHR does (CDS Hooks #trusting-cds-clients)."""

    key: ec.EllipticCurvePrivateKey
    base_url: str

    def token(self, path: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": self.base_url + path,
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": "soak"})

    def write_issuer(self, directory: Path) -> Path:
        public = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwks = directory / "jwks.json"
        jwks.write_text(json.dumps({"keys": [{**public, "kid": "soak", "alg": "ES384"}]}))
        issuers = directory / "issuers.json"
        issuers.write_text(json.dumps([{"iss": ISSUER, "jwks_file": str(jwks)}]))
        return issuers


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _nested_payload_token() -> str:
    header = _b64(b'{"alg":"ES384","typ":"JWT","kid":"soak"}')
    payload = _b64(b'{"iss":"' + ISSUER.encode() + b'","x":' + b"[" * 5000 + b"]" * 5000 + b"}")
    return f"{header}.{payload}.{_b64(bytes(96))}"


@dataclass(frozen=True)
class Kind:
    name: str
    path: str
    body: bytes
    expected: int
    weight: int
    token: str | None = None
    """A fixed (hostile) bearer token; None: a freshly signed valid one."""


def kinds(signer: Signer) -> list[Kind]:
    good = json.dumps(_example()).encode()
    replayed = signer.token(SERVICE)
    deep = b'{"hook":"order-select","hookInstance":"x","context":' + b"[" * 50_000
    return [
        Kind("good", SERVICE, good, 200, 50),
        Kind("long-stay 500x500", SERVICE, json.dumps(long_stay(500, 500)).encode(), 200, 3),
        Kind("60 KB note", SERVICE, json.dumps(_long_note()).encode(), 200, 3),
        Kind("NaN dose", SERVICE, _nan_dose(), 400, 5),
        Kind("malformed JSON", SERVICE, b'{"hook": "order-select",', 400, 5),
        Kind("nested 50,000 deep", SERVICE, deep + b"]" * 50_000 + b"}", 400, 5),
        Kind("3 MB body", SERVICE, b" " * 3_000_000, 413, 3),
        Kind("allowlist bypass", SERVICE, json.dumps(_bypass()).encode(), 412, 5),
        Kind("unknown service", "/cds-services/nope", good, 404, 5),
        Kind("JWT nested 5,000 deep", SERVICE, good, 401, 3, _nested_payload_token()),
        Kind("JWT not base64", SERVICE, good, 401, 3, "a.b!.c"),
        Kind("JWT replayed", SERVICE, good, 401, 3, replayed),
    ]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    probe: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: Kind, status: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind.name].append(seconds)
            self.statuses[kind.name][status] += 1
            if status != str(kind.expected):
                self.failures[kind.name][status] += 1


def _client_loop(signer: Signer, mix: list[Kind], tally: Tally, until: float, seed: int) -> None:
    rng = random.Random(seed)
    weights = [k.weight for k in mix]
    with httpx.Client(base_url=signer.base_url, timeout=30) as client:
        while time.monotonic() < until:
            kind = rng.choices(mix, weights)[0]
            token = kind.token or signer.token(kind.path)
            headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
            started = time.perf_counter()
            try:
                status = str(client.post(kind.path, content=kind.body, headers=headers).status_code)
            except httpx.TransportError as exc:
                status = type(exc).__name__
            tally.add(kind, status, time.perf_counter() - started)


def _probe_loop(signer: Signer, tally: Tally, until: float) -> None:
    with httpx.Client(base_url=signer.base_url, timeout=30) as client:
        while time.monotonic() < until:
            headers = {"authorization": f"Bearer {signer.token('/cds-services')}"}
            started = time.perf_counter()
            with contextlib.suppress(httpx.TransportError):
                client.get("/cds-services", headers=headers)
            tally.probe.append(time.perf_counter() - started)
            time.sleep(0.1)


def _editor_loop(rules_dir: Path, until: float, counts: Counter[str]) -> None:
    path = rules_dir / RULE_FILE
    original = path.read_text(encoding="utf-8")
    index = 0
    while time.monotonic() < until:
        time.sleep(1.0)
        index += 1
        if index % 2:
            text = original.replace(
                SUMMARY, f'summary: "Restless {{region}} on {{drug}}: v{index}"'
            )
            counts["valid edits"] += 1
        else:
            text = original.replace("priority: 10", f"priority: broken-{index}", 1)
            counts["invalid edits"] += 1
        staging = path.with_name(f".{path.name}.tmp")
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, path)


def _database_pause(database: Path, at: float, hold: float, log: list[str]) -> None:
    time.sleep(max(0.0, at - time.monotonic()))
    connection = sqlite3.connect(database, timeout=10, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        log.append(f"exclusive lock held {hold:.0f} s")
        time.sleep(hold)
        connection.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.append(f"could not lock the database: {exc}")
    finally:
        connection.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    with httpx.Client(base_url=url, timeout=2) as client:
        for _ in range(300):
            if server.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                client.get("/cds-services")  # a 401 is fine: it is up
                return
            except httpx.TransportError:
                time.sleep(0.1)
    raise SystemExit("the server did not start")


def _ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def soak(seconds: float, clients: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="restless-soak-"))
    rules_dir = work / "rules"
    shutil.copytree(ROOT / "rules", rules_dir)
    database, server_log = work / "soak.db", work / "server.log"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    signer = Signer(ec.generate_private_key(ec.SECP384R1()), url)
    env = {
        **os.environ,
        "RESTLESS_CDS_PUBLIC_BASE_URL": url,
        "RESTLESS_CDS_TRUSTED_ISSUERS_FILE": str(signer.write_issuer(work)),
        "RESTLESS_CDS_DATABASE_PATH": str(database),
        "RESTLESS_CDS_RELOAD_INTERVAL_SECONDS": "0.5",
        "RESTLESS_CDS_FHIR_ALLOWED_SERVERS": json.dumps([ALLOWED]),
    }
    command = [sys.executable, "-m", "cds", "serve", "--port", str(port)]
    command += ["--rules-dir", str(rules_dir), "--log-level", "warning"]
    with server_log.open("wb") as log_file:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=log_file)
        try:
            _wait_until_up(url, server)
            mix = kinds(signer)
            tally = Tally()
            with httpx.Client(base_url=url, timeout=30) as warm:
                for kind in mix:  # the replayed token's first (accepted) use is here
                    auth = {"authorization": f"Bearer {kind.token or signer.token(kind.path)}"}
                    warm.post(kind.path, content=kind.body, headers=auth)
            rss_start = _rss_kib(server.pid)
            until = time.monotonic() + seconds
            edits: Counter[str] = Counter()
            pause_log: list[str] = []
            threads = [
                threading.Thread(target=_client_loop, args=(signer, mix, tally, until, n))
                for n in range(clients)
            ]
            threads.append(threading.Thread(target=_probe_loop, args=(signer, tally, until)))
            threads.append(threading.Thread(target=_editor_loop, args=(rules_dir, until, edits)))
            pause_at = time.monotonic() + seconds / 3
            pause = threading.Thread(
                target=_database_pause, args=(database, pause_at, 3.0, pause_log)
            )
            threads.append(pause)
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rss_end = _rss_kib(server.pid)
            alive = server.poll() is None
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    log_lines = server_log.read_text(encoding="utf-8", errors="replace").splitlines()
    shutil.rmtree(work, ignore_errors=True)
    every = [s for values in tally.latencies.values() for s in values]
    return {
        "measured": dt.date.today().isoformat(),
        "machine": f"{platform.machine()} (Python {platform.python_version()})",
        "seconds": seconds,
        "clients": clients,
        "requests": len(every),
        "failures": sum(sum(c.values()) for c in tally.failures.values()),
        "failures_by_kind": {k: dict(v) for k, v in tally.failures.items() if v},
        "statuses_by_kind": {k: dict(v) for k, v in tally.statuses.items()},
        "latency_ms": {
            name: {"n": len(v), "p50": _ms(v, 0.5), "p99": _ms(v, 0.99), "max": _ms(v, 1.0)}
            for name, v in tally.latencies.items()
        },
        "p99_ms_all": _ms(every, 0.99),
        "max_stall_ms": _ms(tally.probe, 1.0),
        "probe_p50_ms": round(statistics.median(tally.probe) * 1000, 1) if tally.probe else 0,
        "rss_start_mib": round(rss_start / 1024, 1),
        "rss_end_mib": round(rss_end / 1024, 1),
        "server_alive_at_end": alive,
        "edits": dict(edits),
        "database_pause": pause_log,
        "server_log_lines": len(log_lines),
        "server_log_tracebacks": sum(1 for line in log_lines if line.startswith("Traceback")),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Soak measured {result['measured']} on {result['machine']}: {result['seconds']:.0f} s, "
        f"{result['clients']} client threads, one server worker on loopback, "
        "client JWTs required.",
        "",
        f"- requests: {result['requests']}, failures (a status other than the kind's): "
        f"{result['failures']}",
        f"- p99 over all requests: {result['p99_ms_all']} ms; worst discovery stall: "
        f"{result['max_stall_ms']} ms (probe p50 {result['probe_p50_ms']} ms)",
        f"- server RSS: {result['rss_start_mib']} MiB at start, {result['rss_end_mib']} MiB at "
        f"end; alive at end: {result['server_alive_at_end']}",
        f"- rule edits: {result['edits']}; database pause: {'; '.join(result['database_pause'])}",
        f"- server log: {result['server_log_lines']} lines, "
        f"{result['server_log_tracebacks']} tracebacks",
        "",
        "| kind | requests | statuses | failures | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, stats in result["latency_ms"].items():
        statuses = ", ".join(
            f"{s}: {n}" for s, n in sorted(result["statuses_by_kind"][name].items())
        )
        failed = result["failures_by_kind"].get(name, {})
        failures = ", ".join(f"{s}: {n}" for s, n in sorted(failed.items())) or "0"
        lines.append(
            f"| {name} | {stats['n']} | {statuses} | {failures} | {stats['p50']} | "
            f"{stats['p99']} | {stats['max']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    result = soak(args.seconds, args.clients)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = markdown(result)
    (RESULTS / "soak.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
