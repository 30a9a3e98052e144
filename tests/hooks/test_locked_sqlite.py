"""A SQLite feedback store that another connection holds locked (``BEGIN EXCLUSIVE``, as
a backup tool or a stuck ``sqlite3`` shell would), against a real ``restless-cds serve``
process: the hook still answers within its budget, every card record is written or
counted as dropped, and the read endpoints answer 503 in time instead of a 500 after
the busy timeout."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import for_patient, load_example
from tests.serving import Served, serve

SERVICE = "/cds-services/restless-order-select"
STORE_TIMEOUT = 0.3
FEEDBACK_TIMEOUT = 1.0


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "feedback.db"


@pytest.fixture
def server(tmp_path: Path, database: Path) -> Iterator[Served]:
    env = {
        "RESTLESS_CDS_DATABASE_PATH": str(database),
        "RESTLESS_CDS_STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT),
        "RESTLESS_CDS_FEEDBACK_TIMEOUT_SECONDS": str(FEEDBACK_TIMEOUT),
        "RESTLESS_CDS_SUPPRESSION_CACHE_SECONDS": "0",
        "RESTLESS_CDS_RELOAD_INTERVAL_SECONDS": "0",
    }
    with serve(tmp_path, env=env) as served:
        yield served


def _request(patient: str) -> dict[str, Any]:
    body = for_patient(load_example("restless-back-amisulpride.json"), patient)
    body["prefetch"]["observations"] = None  # labs looked for, none: no FHIR server call
    return body


def _card(server: Served, patient: str) -> dict[str, Any]:
    response = httpx.post(server.url + SERVICE, json=_request(patient), timeout=30)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    assert len(cards) == 1
    return cards[0]


def _locked(database: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(database, isolation_level=None, timeout=0)
    connection.execute("BEGIN EXCLUSIVE")
    return connection


def _recorded(database: Path, uuids: list[str]) -> set[str]:
    with sqlite3.connect(database) as connection:
        marks = ",".join("?" * len(uuids))
        rows = connection.execute(
            f"SELECT card_uuid FROM issued_cards WHERE card_uuid IN ({marks})", uuids
        )
        return {row[0] for row in rows}


def _dropped(server: Served) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    found = re.findall(r"^cds_card_records_dropped_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    return sum(float(value) for value in found)


def test_the_hook_answers_in_budget_and_loses_no_uncounted_record_while_locked(
    server: Served, database: Path
) -> None:
    _card(server, "pt-warm")  # tables exist, connections open
    lock = _locked(database)
    issued, slowest = [], 0.0
    try:
        for i in range(5):
            started = time.monotonic()
            issued.append(_card(server, f"pt-locked-{i}")["uuid"])
            slowest = max(slowest, time.monotonic() - started)
    finally:
        lock.rollback()
        lock.close()
    assert slowest < STORE_TIMEOUT + 1.0, f"a hook answer took {slowest:.2f} s"
    deadline = time.monotonic() + 15
    while True:
        written, dropped = _recorded(database, issued), _dropped(server)
        if len(written) + dropped >= len(issued) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(written) + dropped == len(issued)
    assert "Traceback" not in server.log()


def test_a_card_explanation_while_locked_is_a_503_in_time_not_a_500(
    server: Served, database: Path
) -> None:
    card = _card(server, "pt-explained")
    path = f"{SERVICE}/cards/{card['uuid']}/explanation"
    assert httpx.get(server.url + path, timeout=30).status_code == 200  # recorded
    lock = _locked(database)
    try:
        started = time.monotonic()
        response = httpx.get(server.url + path, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        lock.rollback()
        lock.close()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    assert elapsed < FEEDBACK_TIMEOUT + 1.0, f"answered after {elapsed:.2f} s"
    assert httpx.get(server.url + path, timeout=30).status_code == 200  # unlocked: found
    assert "Traceback" not in server.log()


def test_a_card_explanation_while_its_record_waits_on_the_lock_is_a_503_in_time(
    server: Served, database: Path
) -> None:
    _card(server, "pt-warm")
    lock = _locked(database)
    try:
        card = _card(server, "pt-queued")  # its record cannot be written yet
        started = time.monotonic()
        path = f"{SERVICE}/cards/{card['uuid']}/explanation"
        response = httpx.get(server.url + path, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        lock.rollback()
        lock.close()
    assert response.status_code == 503, response.text
    assert elapsed < FEEDBACK_TIMEOUT + 1.0, f"answered after {elapsed:.2f} s"


def test_the_dashboard_while_locked_is_a_503_in_time(server: Served, database: Path) -> None:
    _card(server, "pt-dashboard")
    assert httpx.get(server.url + "/ui/api/dashboard", timeout=30).status_code == 200
    lock = _locked(database)
    try:
        started = time.monotonic()
        response = httpx.get(server.url + "/ui/api/dashboard", timeout=60)
        elapsed = time.monotonic() - started
    finally:
        lock.rollback()
        lock.close()
    assert response.status_code == 503, response.text
    assert elapsed < FEEDBACK_TIMEOUT + 1.0, f"answered after {elapsed:.2f} s"
