"""``restless-cds serve --workers 2`` as deployed: the pseudonym key reaches the workers,
one metrics view over both, request ids, health, open-default warnings, redacted access
log, no patient data or token in any log line, and a prompt stop on SIGTERM."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import load_example
from tests.serving import Served, free_port, serve

SERVICE = "/cds-services/restless-order-select"
KEY = "operator-key-5f1c9a"
PATIENT = "mkpatient7319"
TOKEN = "mktoken7319"
TEXT = "mknote7319"
MARKERS = (KEY, PATIENT, TOKEN, TEXT)


def _request(patient: str = PATIENT) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        json.dumps(load_example("restless-back-amisulpride.json")).replace("rbs-50m", patient)
    )
    condition = body["prefetch"]["conditions"]["entry"][0]["resource"]
    condition["note"] = [{"text": f"{TEXT} restless legs at night"}]
    return body


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("serve")
    env = {
        "RESTLESS_CDS_PSEUDONYM_KEY": KEY,
        "RESTLESS_CDS_DATABASE_PATH": str(tmp_path / "fb.db"),
        "RESTLESS_CDS_MAX_BODY_BYTES": "65536",
        "RESTLESS_CDS_LOG_FORMAT": "json",
        "RESTLESS_CDS_GRACEFUL_SHUTDOWN_SECONDS": "3",
        "RESTLESS_CDS_RELOAD_INTERVAL_SECONDS": "0",
    }
    # 127.0.0.2 is loopback to the kernel but not to the service: the open defaults warn
    args = ("--workers", "2", "--allow-unauthenticated-remote")
    with serve(tmp_path, *args, env=env, host="127.0.0.2") as server:
        yield server, tmp_path / "fb.db"


def _pseudonyms(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        return {row[0] for row in connection.execute("SELECT patient_pseudonym FROM issued_cards")}


def test_the_pseudonym_key_reaches_every_worker(served: tuple[Served, Path]) -> None:
    server, database = served
    for _ in range(6):  # both workers answer some of these
        response = httpx.post(server.url + SERVICE, json=_request(), timeout=10)
        assert response.status_code == 200
        assert response.json()["cards"]
    expected = hmac.new(
        KEY.encode(), f"https://fhir.example.org/r4|{PATIENT}".encode(), hashlib.sha256
    ).hexdigest()
    deadline = time.monotonic() + 5
    while not _pseudonyms(database) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pseudonyms(database) == {expected}


def test_a_request_id_is_echoed_or_made(served: tuple[Served, Path]) -> None:
    server, _ = served
    given = httpx.get(server.url + "/cds-services", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = httpx.get(server.url + "/cds-services", headers={"X-Request-ID": "two words"})
    assert len(made.headers["x-request-id"]) == 32


def test_health_and_readiness_are_open_and_not_in_discovery(served: tuple[Served, Path]) -> None:
    server, _ = served
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "rules": True, "store": True, "accepting": True}
    services = httpx.get(server.url + "/cds-services").json()["services"]
    assert not [s for s in services if "healthz" in s["id"] or "readyz" in s["id"]]


def test_metrics_sum_both_workers(served: tuple[Served, Path]) -> None:
    server, _ = served
    calls = 8
    for _ in range(calls):
        httpx.post(server.url + SERVICE, json=_request("other-patient"), timeout=10)
    text = httpx.get(server.url + "/metrics").text
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('cds_requests_total{service="restless-order-select",status="200"}')
    )
    assert counted >= calls  # one worker alone would have seen about half
    assert 'cds_stage_seconds_bucket{le="0.001",stage="engine"}' in text
    assert "cds_cards_total{" in text


def test_open_defaults_warn_at_start_up(served: tuple[Served, Path]) -> None:
    server, _ = served
    warnings = [line for line in server.log().splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, warnings
    assert any("TRUSTED_ISSUERS" in w for w in warnings)
    assert any("CORS" in w for w in warnings)
    assert any("FHIR_ALLOWED_SERVERS" in w for w in warnings)


def test_no_token_patient_id_or_record_text_in_any_log_line(served: tuple[Served, Path]) -> None:
    server, _ = served
    url = server.url + SERVICE
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "markers"}
    httpx.post(url, json=_request(), headers=headers, timeout=10)
    assert httpx.get(f"{server.url}/cds-services?access_token={TOKEN}").status_code in (200, 400)
    httpx.post(f"{url}?access_token={TOKEN}&patient={PATIENT}", json=_request(), timeout=10)
    # 412: nothing prefetched, the FHIR server (a closed port) fails: the token is sent there
    fallback = _request()
    fallback["prefetch"] = {}
    fallback["fhirServer"] = f"http://127.0.0.1:{free_port()}/fhir/{PATIENT}"
    fallback["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds",
    }
    assert httpx.post(url, json=fallback, timeout=15).status_code == 412
    # 413 with the markers in the body
    huge = _request()
    huge["context"]["padding"] = (TEXT + PATIENT + TOKEN) * 4000
    assert httpx.post(url, json=huge, timeout=10).status_code == 413
    # 400 with the markers in a bad field
    bad = _request()
    bad["context"]["patientId"] = {"id": PATIENT, "token": TOKEN}
    assert httpx.post(url, json=bad, timeout=10).status_code == 400
    # feedback naming an unknown card, with a comment
    feedback = {
        "feedback": [
            {
                "card": "00000000-0000-4000-8000-000000000000",
                "outcome": "overridden",
                "overrideReason": {"userComment": f"{TEXT} {PATIENT}"},
                "outcomeTimestamp": "2026-01-01T00:00:00Z",
            }
        ]
    }
    assert httpx.post(url + "/feedback", json=feedback, timeout=10).status_code == 400
    time.sleep(0.3)
    log = server.log()
    assert "access_token=REDACTED" in log  # the access log has the line, without its value
    for marker in MARKERS:
        assert marker not in log, f"{marker} found in the log"


def test_every_log_line_is_json_with_a_request_id(served: tuple[Served, Path]) -> None:
    server, _ = served
    httpx.post(server.url + SERVICE, json=_request(), headers={"X-Request-ID": "rid-42"})
    time.sleep(0.3)
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    answered = [
        line
        for line in lines
        if line.get("message") == "hook answered" and line.get("request_id") == "rid-42"
    ]
    assert answered, "no structured line for the call"
    entry = answered[0]
    assert entry["service"] == "restless-order-select"
    assert entry["outcome"] in {"cards", "no-cards"}
    assert set(entry["timings_ms"]) >= {"facts", "engine", "cards"}
    assert entry["rules_version"]
    assert entry["hookInstance"]


def test_sigterm_stops_within_the_graceful_timeout(tmp_path: Path) -> None:
    env = {"RESTLESS_CDS_GRACEFUL_SHUTDOWN_SECONDS": "2"}
    with serve(tmp_path, "--workers", "2", env=env) as server:
        httpx.post(server.url + SERVICE, json=_request(), timeout=10)
        assert server.stop() < 2 + 3  # the timeout plus process exit
        assert server.process.returncode == 0


def test_sigterm_stops_a_worker_pinned_by_a_long_request(tmp_path: Path) -> None:
    """A request that keeps the event loop busy (a long unpunctuated note) cannot hold
    a stopping worker past the graceful timeout plus the stop margin."""
    env = {"RESTLESS_CDS_GRACEFUL_SHUTDOWN_SECONDS": "1", "RESTLESS_CDS_LOG_FORMAT": "json"}
    body = _request()
    note = " ".join(f"word{i} restless legs at rest" for i in range(6000))
    body["prefetch"]["conditions"]["entry"][0]["resource"]["note"] = [{"text": note}]

    def call(url: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(url + SERVICE, json=body, timeout=60)

    with serve(tmp_path, env=env) as server:
        caller = threading.Thread(target=call, args=(server.url,), daemon=True)
        caller.start()
        time.sleep(0.5)  # the request is being evaluated
        assert server.stop() < 1 + 2 + 2  # graceful timeout, stop margin, exit
        caller.join(5)
