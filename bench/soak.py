"""Soak: a real server under a bounded mix of EHR-like, large and hostile calls, with rule
edits (hot reload), a database pause and retention on, reporting what a long bad day shows.

Run with ``make soak`` (``SOAK_REQUESTS``, default 100,000) or ``python -m bench.soak
--requests 20000``. Starts ``restless-cds serve`` on a loopback port with a copy of the
bundled rules and a fresh SQLite file, then until ``--requests`` calls are answered (or
``--seconds`` pass, if given):

- most calls are an EHR's: order-select for one of ``PATIENTS`` patients under a new hook
  instance (a card), the thread's last such call again (the same card: no new row), a patient
  with no candidate (no card), and feedback on a card just received (accepted, or an
  override, one in ten "already addressed", which silences that patient's rule);
- retention is on and short (``--retention-seconds``, default 30 s, pruned every 5 s),
  so the store's size must level off instead of growing with the requests;
- every second, the server's RSS, the database file sizes (WAL included) and the row
  counts of each table are sampled: ``rss_mib`` and ``store`` in the results;

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
- an editor rewrites a rule file every second, valid and invalid in turn (atomic saves;
  ``--no-rule-edits`` leaves the rules alone);
- a third of the way in, the SQLite file is locked exclusively for 3 s.

Writes ``bench/results/soak.md`` and ``soak.json``: requests, failures by kind and
status, p50/p99/max per kind, the worst stall, RSS and store size over time, card records
dropped (``cds_card_records_dropped_total``), and the server's log volume. Not part of
``make test``: the numbers depend on the machine.
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


PATIENTS = 300
INSTANCE = b"00000000-0000-4000-8000-000000000000"
"""The hook instance in the EHR-like bodies; replaced per call where a new one is due."""
NO_CARD = ROOT / "fhir_examples" / "mechanical-back-pain-amisulpride.json"


def _for_patients(path: Path, count: int) -> tuple[bytes, ...]:
    """``path``'s call for each of ``count`` patients (every reference moved), under
    the placeholder hook instance ``INSTANCE``."""
    text = path.read_text(encoding="utf-8")
    old = json.loads(text)["context"]["patientId"]
    bodies = []
    for index in range(count):
        patient = f"soak-pt-{index}"
        request = json.loads(text.replace(f'"Patient/{old}"', f'"Patient/{patient}"'))
        request["context"]["patientId"] = patient
        request["hookInstance"] = INSTANCE.decode()
        bodies.append(json.dumps(request).encode())
    return tuple(bodies)


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
    variants: tuple[bytes, ...] = ()
    """Bodies to pick from (one per patient) instead of ``body``."""
    new_instance: bool = False
    """Give each call a new hook instance (else the patient's one, repeated)."""


FEEDBACK = "feedback on the last card"
NEW_INSTANCE = "card, new hook instance"
AGAIN = "card, same hook instance again"
"""The client thread's last new-instance call sent again (the order changed back and
forth, as order-select fires on every change)."""


def kinds(signer: Signer) -> list[Kind]:
    good = json.dumps(_example()).encode()
    replayed = signer.token(SERVICE)
    deep = b'{"hook":"order-select","hookInstance":"x","context":' + b"[" * 50_000
    patients = _for_patients(EXAMPLE, PATIENTS)
    no_card = _for_patients(NO_CARD, 1)
    return [
        Kind(NEW_INSTANCE, SERVICE, good, 200, 40, None, patients, True),
        Kind(AGAIN, SERVICE, good, 200, 20, None, patients),
        Kind("no card", SERVICE, good, 200, 15, None, no_card, True),
        Kind(FEEDBACK, SERVICE + "/feedback", b"", 200, 8),
        Kind("good", SERVICE, good, 200, 5),
        Kind("long-stay 500x500", SERVICE, json.dumps(long_stay(500, 500)).encode(), 200, 1),
        Kind("60 KB note", SERVICE, json.dumps(_long_note()).encode(), 200, 2),
        Kind("NaN dose", SERVICE, _nan_dose(), 400, 5),
        Kind("malformed JSON", SERVICE, b'{"hook": "order-select",', 400, 5),
        Kind("nested 50,000 deep", SERVICE, deep + b"]" * 50_000 + b"}", 400, 5),
        Kind("3 MB body", SERVICE, b" " * 3_000_000, 413, 1),
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


class Budget:
    """Requests left to send, and a deadline: ``stop`` is set when either runs out."""

    def __init__(self, requests: int, seconds: float | None) -> None:
        self.left = requests
        self.total = requests
        self.deadline = time.monotonic() + seconds if seconds else None
        self.stop = threading.Event()
        self.third = threading.Event()  # a third of the requests sent: pause the database
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            late = self.deadline is not None and time.monotonic() >= self.deadline
            if self.left <= 0 or late:
                self.stop.set()
                return False
            self.left -= 1
            if self.total - self.left >= self.total / 3:
                self.third.set()
            return True

    @property
    def sent(self) -> int:
        return self.total - self.left


def _feedback_body(card: dict[str, Any], rng: random.Random) -> bytes:
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcomeTimestamp": dt.datetime.now(dt.UTC).isoformat(),
    }
    suggestions = card.get("suggestions") or []
    if rng.random() < 0.5 and suggestions:
        item |= {"outcome": "accepted", "acceptedSuggestions": [{"id": suggestions[0]["uuid"]}]}
    else:
        codes = [r["code"] for r in card.get("overrideReasons", [])]
        wanted = "already-aware" if rng.random() < 0.1 else "judged-psychiatric"
        code = wanted if wanted in codes else (codes[0] if codes else None)
        reason = next((r for r in card["overrideReasons"] if r["code"] == code), None)
        item |= {"outcome": "overridden"} | (
            {"overrideReason": {"reason": reason}} if reason else {}
        )
    return json.dumps({"feedback": [item]}).encode()


def _body(kind: Kind, rng: random.Random, last_card: dict[str, Any] | None) -> bytes | None:
    if kind.name == FEEDBACK:
        return None if last_card is None else _feedback_body(last_card, rng)
    body = rng.choice(kind.variants) if kind.variants else kind.body
    if kind.new_instance:
        body = body.replace(INSTANCE, str(uuid.uuid4()).encode())
    return body


def _client_loop(signer: Signer, mix: list[Kind], tally: Tally, budget: Budget, seed: int) -> None:
    rng = random.Random(seed)
    weights = [k.weight for k in mix]
    last_card: dict[str, Any] | None = None
    last_new: bytes | None = None
    with httpx.Client(base_url=signer.base_url, timeout=30) as client:
        while True:
            kind = rng.choices(mix, weights)[0]
            body = _body(kind, rng, last_card)
            if kind.name == NEW_INSTANCE:
                last_new = body
            elif kind.name == AGAIN and last_new is not None:
                body = last_new
            if body is None or not budget.take():
                if budget.stop.is_set():
                    return
                continue
            token = kind.token or signer.token(kind.path)
            headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
            started = time.perf_counter()
            try:
                response = client.post(kind.path, content=body, headers=headers)
                status = str(response.status_code)
            except httpx.TransportError as exc:
                status = type(exc).__name__
            tally.add(kind, status, time.perf_counter() - started)
            if kind.variants and status == "200":
                cards = response.json()["cards"]
                last_card = cards[0] if cards else last_card
            elif kind.name == FEEDBACK:
                last_card = None  # one feedback call per card


def _probe_loop(signer: Signer, tally: Tally, budget: Budget) -> None:
    with httpx.Client(base_url=signer.base_url, timeout=30) as client:
        while not budget.stop.is_set():
            headers = {"authorization": f"Bearer {signer.token('/cds-services')}"}
            started = time.perf_counter()
            with contextlib.suppress(httpx.TransportError):
                client.get("/cds-services", headers=headers)
            tally.probe.append(time.perf_counter() - started)
            time.sleep(0.1)


def _editor_loop(rules_dir: Path, budget: Budget, counts: Counter[str]) -> None:
    path = rules_dir / RULE_FILE
    original = path.read_text(encoding="utf-8")
    index = 0
    while not budget.stop.wait(1.0):
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


def _database_pause(database: Path, budget: Budget, hold: float, log: list[str]) -> None:
    while not budget.third.wait(0.5):
        if budget.stop.is_set():
            return
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


def _status_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure in KiB (0 if the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


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


TABLES = ("issued_cards", "feedback", "suppressions", "token_uses")


def _store_sample(database: Path) -> dict[str, int]:
    """Bytes on disk (the file and its WAL) and rows per table, read-only."""
    sizes = {
        "bytes": sum(
            p.stat().st_size
            for p in (database, database.with_name(database.name + "-wal"))
            if p.exists()
        )
    }
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            for table in TABLES:
                sizes[table] = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error:
        pass  # locked by the database pause: this sample has sizes only
    return sizes


def _sampler(
    pid: int, database: Path, budget: Budget, every: float, samples: list[dict[str, Any]]
) -> None:
    started = time.monotonic()
    while True:
        stopped = budget.stop.wait(every)
        samples.append(
            {
                "seconds": round(time.monotonic() - started, 1),
                "requests": budget.sent,
                "rss_mib": round(_rss_kib(pid) / 1024, 1),
                "rss_anon_mib": round(_status_kib(pid, "RssAnon") / 1024, 1),
                **_store_sample(database),
            }
        )
        if stopped:
            return


def _dropped_card_records(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    dropped = {}
    for line in text.splitlines():
        if line.startswith("cds_card_records_dropped_total{"):
            labels, value = line.rsplit(" ", 1)
            dropped[labels.split('"')[1]] = float(value)
    return dropped


def soak(
    requests: int,
    seconds: float | None,
    clients: int,
    retention_seconds: float,
    *,
    rule_edits: bool = True,
) -> dict[str, Any]:
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
        "RESTLESS_CDS_CARD_RETENTION_DAYS": str(retention_seconds / 86400),
        "RESTLESS_CDS_PRUNE_INTERVAL_SECONDS": "5",
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
            budget = Budget(requests, seconds)
            started = time.monotonic()
            edits: Counter[str] = Counter()
            pause_log: list[str] = []
            samples: list[dict[str, Any]] = []
            threads = [
                threading.Thread(target=_client_loop, args=(signer, mix, tally, budget, n))
                for n in range(clients)
            ]
            threads.append(threading.Thread(target=_probe_loop, args=(signer, tally, budget)))
            if rule_edits:
                editor = threading.Thread(target=_editor_loop, args=(rules_dir, budget, edits))
                threads.append(editor)
            threads.append(
                threading.Thread(target=_database_pause, args=(database, budget, 3.0, pause_log))
            )
            threads.append(
                threading.Thread(target=_sampler, args=(server.pid, database, budget, 1.0, samples))
            )
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            rss_end = _rss_kib(server.pid)
            alive = server.poll() is None
            dropped = _dropped_card_records(url) if alive else {}
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
        "seconds": round(elapsed, 1),
        "clients": clients,
        "retention_seconds": retention_seconds,
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
        "card_records_dropped": dropped,
        "rss_checkpoints": checkpoints(samples),
        "rss_verdict": rss_verdict(samples),
        "samples": samples,
        "edits": dict(edits),
        "database_pause": pause_log,
        "server_log_lines": len(log_lines),
        "server_log_tracebacks": sum(1 for line in log_lines if line.startswith("Traceback")),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Soak measured {result['measured']} on {result['machine']}: {result['requests']} "
        f"requests in {result['seconds']:.0f} s, {result['clients']} client threads, one server "
        "worker on loopback, client JWTs required, SQLite, card retention "
        f"{result['retention_seconds']:.0f} s (pruned every 5 s).",
        "",
        f"- requests: {result['requests']}, failures (a status other than the kind's): "
        f"{result['failures']}",
        f"- p99 over all requests: {result['p99_ms_all']} ms; worst discovery stall: "
        f"{result['max_stall_ms']} ms (probe p50 {result['probe_p50_ms']} ms)",
        f"- server RSS: {result['rss_start_mib']} MiB at start, {result['rss_end_mib']} MiB at "
        f"end; alive at end: {result['server_alive_at_end']}",
        f"- card records dropped: {result['card_records_dropped'] or 0}",
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


CHECKPOINT_EVERY = 5_000
"""Requests between the rows of the RSS table (fewer rows for a short run)."""
FLAT_PERCENT = 2.0
"""RSS is called flat when it grew by at most this much over the run's second half."""


def _first_at(samples: list[dict[str, Any]], requests: float) -> dict[str, Any]:
    """The first sample taken once ``requests`` were sent (the last if none was)."""
    return next((s for s in samples if s["requests"] >= requests), samples[-1])


ROW_KEYS = ("rss_mib", "rss_anon_mib", "bytes", "issued_cards", "token_uses")


def checkpoints(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RSS and store every ``CHECKPOINT_EVERY`` requests (at least every twentieth of the
    run), from the once-a-second samples: the first row is just after the warm-up."""
    if not samples:
        return []
    requests = samples[-1]["requests"]
    every = min(CHECKPOINT_EVERY, max(1, requests // 20))
    marks = [samples[0], *(_first_at(samples, n) for n in range(every, requests + 1, every))]
    rows, seen = [], set()
    for sample in [*marks, samples[-1]]:
        if id(sample) not in seen:
            seen.add(id(sample))
            rows.append({k: sample.get(k) for k in ("seconds", "requests", *ROW_KEYS)})
    return rows


def rss_verdict(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """RSS just after warm-up, at half the requests and at the end; growth over the second
    half (MiB, %, and per 10,000 requests), the store's likewise, and whether RSS is flat."""
    if not samples:
        return {}
    first, last = samples[0], samples[-1]
    half = _first_at(samples, last["requests"] / 2)
    growth = round(last["rss_mib"] - half["rss_mib"], 1)
    percent = round(100 * growth / half["rss_mib"], 1) if half["rss_mib"] else 0.0
    per_10k = 10_000 * growth / max(1, last["requests"] - half["requests"])
    return {
        "rss_first_mib": first["rss_mib"],
        "rss_half_mib": half["rss_mib"],
        "rss_last_mib": last["rss_mib"],
        "rss_peak_mib": max(s["rss_mib"] for s in samples),
        "second_half_growth_mib": growth,
        "second_half_growth_percent": percent,
        "second_half_growth_mib_per_10k_requests": round(per_10k, 2),
        "rss_anon_half_mib": half.get("rss_anon_mib"),
        "rss_anon_last_mib": last.get("rss_anon_mib"),
        "store_half_bytes": half["bytes"],
        "store_last_bytes": last["bytes"],
        "store_peak_bytes": max(s["bytes"] for s in samples),
        "flat": percent <= FLAT_PERCENT,
    }


def verdict_lines(verdict: dict[str, Any]) -> list[str]:
    if not verdict:
        return []
    word = "flat" if verdict["flat"] else "NOT flat"
    return [
        "",
        f"RSS verdict: {word} (flat means at most {FLAT_PERCENT:g}% growth over the second "
        f"half): {verdict['rss_first_mib']} MiB after warm-up, {verdict['rss_half_mib']} MiB "
        f"at half the requests, {verdict['rss_last_mib']} MiB at the end (peak "
        f"{verdict['rss_peak_mib']}); second half {verdict['second_half_growth_mib']:+} MiB "
        f"({verdict['second_half_growth_percent']:+}%, "
        f"{verdict['second_half_growth_mib_per_10k_requests']:+} MiB per 10,000 requests; "
        f"anonymous memory {verdict['rss_anon_half_mib']} -> {verdict['rss_anon_last_mib']} "
        f"MiB). Store on disk: {verdict['store_half_bytes'] / 1e6:.1f} MB at half, "
        f"{verdict['store_last_bytes'] / 1e6:.1f} MB at the end, peak "
        f"{verdict['store_peak_bytes'] / 1e6:.1f} MB.",
    ]


def checkpoints_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "RSS and store by requests sent (anonymous: RSS less mapped files; rows read-only):",
        "",
        "| s | requests | RSS MiB | anon MiB | store KiB | issued_cards | token_uses |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [f"{row['seconds']:.0f}", str(row["requests"]), str(row["rss_mib"])]
        cells += [str(row["rss_anon_mib"]), str(row["bytes"] // 1024)]
        cells += [str(row.get("issued_cards", "-")), str(row.get("token_uses", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=None, help="Stop earlier at this.")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--retention-seconds", type=float, default=30.0)
    parser.add_argument(
        "--no-rule-edits",
        action="store_true",
        help="Leave the rules alone (tells RSS growth from reloads apart from the rest).",
    )
    args = parser.parse_args()
    result = soak(
        args.requests,
        args.seconds,
        args.clients,
        args.retention_seconds,
        rule_edits=not args.no_rule_edits,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = markdown(result) + "\n".join(
        verdict_lines(result["rss_verdict"]) + checkpoints_table(result["rss_checkpoints"])
    )
    text += "\n"
    (RESULTS / "soak.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
