"""Two replicas behind a load balancer: two ``restless-cds serve`` processes on one
throwaway PostgreSQL. A token replayed to the other replica is refused; feedback and
suppression work whichever replica issued the card; a hanging database delays no hook
answer beyond its budget, and feedback while the store fails is a 503 with Retry-After."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import for_patient, load_example
from tests.feedback.postgres import postgres_url, reset_database
from tests.security.support import ISS, ec_key, public_jwk, sign
from tests.serving import Served, serve

__all__ = ["postgres_url"]  # the session fixture, found by pytest here

SERVICE = "/cds-services/restless-order-select"
BASE = "https://cds.example.org"
KEY = ec_key()
CACHE_SECONDS = 1.0
"""A replica reuses a patient's suppressions this long (RESTLESS_CDS_SUPPRESSION_CACHE_SECONDS)."""


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(KEY, "k1", alg="ES384")]}))
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": ISS, "jwks_file": str(jwks)}]))
    return {
        "RESTLESS_CDS_DATABASE_URL": url,
        "RESTLESS_CDS_PSEUDONYM_KEY": "shared-replica-key",
        "RESTLESS_CDS_TRUSTED_ISSUERS_FILE": str(issuers),
        "RESTLESS_CDS_PUBLIC_BASE_URL": BASE,
        "RESTLESS_CDS_RELOAD_INTERVAL_SECONDS": "0",
        "RESTLESS_CDS_LOG_FORMAT": "json",
        **extra,
    }


def _auth(path: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISS, "aud": BASE + path, "iat": now, "exp": now + 300}
    return {"Authorization": f"Bearer {sign(KEY, payload={**claims, 'jti': str(uuid.uuid4())})}"}


def _card(server: Served, patient: str) -> dict[str, Any] | None:
    body = for_patient(load_example("restless-back-amisulpride.json"), patient)
    response = httpx.post(server.url + SERVICE, json=body, headers=_auth(SERVICE), timeout=10)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards[0] if cards else None


def _override(card: dict[str, Any]) -> dict[str, Any]:
    reason = next(r for r in card["overrideReasons"] if r["code"] == "already-aware")
    when = dt.datetime.now(dt.UTC).isoformat()
    item = {"card": card["uuid"], "outcome": "overridden", "overrideReason": {"reason": reason}}
    return {"feedback": [{**item, "outcomeTimestamp": when}]}


def _feedback(server: Served, body: dict[str, Any]) -> httpx.Response:
    path = SERVICE + "/feedback"
    return httpx.post(server.url + path, json=body, headers=_auth(path), timeout=15)


@pytest.fixture
def database(postgres_url: str) -> str:
    reset_database(postgres_url)
    return postgres_url


@pytest.fixture
def replicas(tmp_path: Path, database: str) -> Iterator[tuple[Served, Served]]:
    env = _env(tmp_path, database, RESTLESS_CDS_SUPPRESSION_CACHE_SECONDS=str(CACHE_SECONDS))
    with serve(tmp_path, env=env) as first, serve(tmp_path, env=env) as second:
        yield first, second


def test_a_token_replayed_to_the_other_replica_is_refused(
    replicas: tuple[Served, Served],
) -> None:
    first, second = replicas
    body = load_example("restless-back-amisulpride.json")
    headers = _auth(SERVICE)
    assert httpx.post(first.url + SERVICE, json=body, headers=headers).status_code == 200
    assert httpx.post(second.url + SERVICE, json=body, headers=headers).status_code == 401
    # refused tokens are logged by reason, never by value
    marker = "mkbadtoken7319"
    bogus = {"Authorization": f"Bearer {marker}.{marker}.{marker}"}
    assert httpx.post(first.url + SERVICE, json=body, headers=bogus).status_code == 401
    replayed_token = headers["Authorization"].split()[1]
    for server in replicas:
        assert marker not in server.log()
        assert replayed_token not in server.log()


def test_feedback_and_suppression_work_across_replicas(replicas: tuple[Served, Served]) -> None:
    first, second = replicas
    card = _card(first, "pt-across")
    assert card is not None
    # sent at once: the first replica may still be writing the card's record
    stored = _feedback(second, _override(card))
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"stored": 1, "duplicates": 0}
    stored_at = time.monotonic()
    assert _card(second, "pt-across") is None  # at once on the replica that stored it
    # the replica that issued the card read this patient's suppressions then: it sees the
    # new one when that read expires, within the cache time
    while _card(first, "pt-across") is not None:
        assert time.monotonic() - stored_at < CACHE_SECONDS + 1.0, "still not silenced"
        time.sleep(0.1)
    assert _card(second, "pt-other") is not None


def _locked(url: str, table: str) -> psycopg.Connection[Any]:
    """A connection holding an exclusive lock on ``table``: the database hangs for it."""
    connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE".encode())
    return connection


def test_a_hanging_database_delays_no_hook_answer_beyond_its_budget(
    tmp_path: Path, database: str
) -> None:
    env = _env(tmp_path, database, RESTLESS_CDS_STORE_TIMEOUT_SECONDS="0.3")
    with serve(tmp_path, env=env) as server:
        assert _card(server, "pt-warm") is not None  # tables exist, pool warm
        lock = _locked(database, "suppressions")
        try:
            started = time.monotonic()
            card = _card(server, "pt-hang")
            elapsed = time.monotonic() - started
        finally:
            lock.close()
        assert card is not None  # fail open: the advice is shown
        assert elapsed < 0.3 + 1.0, f"answered after {elapsed:.2f} s"
        metrics = httpx.get(server.url + "/metrics").text
        assert 'cds_store_failures_total{kind="timeout",operation="suppression-read"} 1.0' in (
            metrics
        )


def test_feedback_while_the_store_fails_is_a_503_and_one_log_line(
    tmp_path: Path, database: str
) -> None:
    env = _env(tmp_path, database, RESTLESS_CDS_FEEDBACK_TIMEOUT_SECONDS="1")
    with serve(tmp_path, env=env) as server:
        card = _card(server, "pt-down")
        assert card is not None
        time.sleep(0.2)  # the card record is written
        lock = _locked(database, "feedback")
        try:
            with httpx.Client(timeout=10) as client:
                path = SERVICE + "/feedback"
                answers = [
                    client.post(server.url + path, json=_override(card), headers=_auth(path))
                    for _ in range(5)
                ]
        finally:
            lock.close()
        for answer in answers:
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "5"
            assert answer.json()["issue"][0]["code"] == "transient"
        log = server.log()
        assert "Traceback" not in log
        failures = [line for line in log.splitlines() if "feedback store feedback" in line]
        assert len(failures) == 1, failures  # rate-limited
        assert _feedback(server, _override(card)).status_code == 200  # the store is back
