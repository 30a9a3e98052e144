"""The hook path and the feedback store: discovery and no-card answers execute no SQL;
repeated calls of one hook instance keep one card (one uuid, one row); suppressions are
served from the worker's cache; retention prunes in the background (SQLite and
PostgreSQL, statements counted on the real engine)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from cds.app import create_app
from cds.feedback import FeedbackStore
from cds.hooks.feedback import CardLedger
from cds.settings import Settings
from tests.conftest import for_patient, load_example
from tests.feedback.postgres import postgres_url, reset_database
from tests.feedback.support import card

__all__ = ["postgres_url"]  # the session fixture, found by pytest here

SERVICE = "/cds-services/restless-order-select"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "sqlite":
        return {"database_path": tmp_path / "fb.db"}
    url: str = request.getfixturevalue("postgres_url")
    reset_database(url)
    return {"database_url": url, "pseudonym_key": "test-key"}


def _client(rules_dir: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(rules_dir=rules_dir, **settings)))


@pytest.fixture
def client(rules_dir: Path, store_settings: dict[str, Any]) -> Iterator[TestClient]:
    with _client(rules_dir, **store_settings) as test_client:
        yield test_client


class Statements:
    """Every SQL statement and pool checkout of the app's store engine, as they happen."""

    def __init__(self, client: TestClient) -> None:
        self.sql: list[str] = []
        self.checkouts = 0
        engine = _ledger(client).store.engine
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "checkout", self._checkout)

    def _statement(self, *args: Any) -> None:
        self.sql.append(args[2])

    def _checkout(self, *args: Any) -> None:
        self.checkouts += 1


def _ledger(client: TestClient) -> CardLedger:
    ledger: CardLedger = client.app.state.card_ledger  # type: ignore[attr-defined]
    return ledger


def _settle(client: TestClient) -> None:
    assert client.portal is not None
    client.portal.call(_ledger(client).settle)


def _call(client: TestClient, example: str, patient: str, hook_instance: str) -> list[Any]:
    body = for_patient(load_example(example), patient)
    body["hookInstance"] = hook_instance
    response = client.post(SERVICE, json=body)
    assert response.status_code == 200, response.text
    cards: list[Any] = response.json()["cards"]
    return cards


def _card_rows(client: TestClient) -> int:
    with _ledger(client).store.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM issued_cards")).scalar_one())


def test_discovery_and_no_card_answers_never_touch_the_database(client: TestClient) -> None:
    counted = Statements(client)
    for n in range(10):
        assert client.get("/cds-services").status_code == 200
        no_card = "mechanical-back-pain-amisulpride.json"
        assert _call(client, no_card, f"pt-{n}", str(uuid.uuid4())) == []
    _settle(client)
    assert (counted.sql, counted.checkouts) == ([], 0)
    assert _call(client, "restless-back-amisulpride.json", "pt-card", str(uuid.uuid4()))
    _settle(client)
    assert counted.sql  # the count works: a card reads suppressions and is written


def test_repeated_calls_of_one_hook_instance_keep_one_card(client: TestClient) -> None:
    example, instance = "restless-back-amisulpride.json", str(uuid.uuid4())
    answers = [_call(client, example, "pt-1", instance) for _ in range(3)]
    assert answers[0]
    assert answers[1] == answers[0] == answers[2]
    _settle(client)
    assert _card_rows(client) == 1
    card = answers[0][0]
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00Z"}
    item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    stored = client.post(SERVICE + "/feedback", json={"feedback": [item]})
    assert stored.json() == {"stored": 1, "duplicates": 0}
    (again,) = _call(client, example, "pt-1", str(uuid.uuid4()))  # a new hook instance
    assert again["uuid"] != card["uuid"]
    (other,) = _call(client, example, "pt-2", instance)  # a client reusing the instance id
    assert other["uuid"] not in {card["uuid"], again["uuid"]}
    _settle(client)
    assert _card_rows(client) == 3
    (row,) = _ledger(client).store.report()
    assert (row.issued, row.accepted) == (3, 1)


def test_repeated_card_calls_read_and_write_nothing_after_the_first(
    client: TestClient,
) -> None:
    counted = Statements(client)
    example, instance = "restless-back-amisulpride.json", str(uuid.uuid4())
    assert _call(client, example, "pt-1", instance)
    _settle(client)
    first = len(counted.sql)
    assert first > 0
    for _ in range(5):
        assert _call(client, example, "pt-1", instance)
    _settle(client)
    assert counted.sql[first:] == []  # suppressions from the cache, the card known


def test_own_feedback_silences_at_once_another_workers_within_the_cache_time(
    rules_dir: Path, store_settings: dict[str, Any]
) -> None:
    ttl, example = 0.5, "restless-back-amisulpride.json"
    settings = {**store_settings, "suppression_cache_seconds": ttl}
    with _client(rules_dir, **settings) as first, _client(rules_dir, **settings) as second:
        (card,) = _call(first, example, "pt-1", str(uuid.uuid4()))
        assert _call(second, example, "pt-1", str(uuid.uuid4()))  # both workers cached pt-1
        _settle(first)
        reason = next(r for r in card["overrideReasons"] if r["code"] == "already-aware")
        item = {"card": card["uuid"], "outcome": "overridden", "overrideReason": {"reason": reason}}
        item["outcomeTimestamp"] = dt.datetime.now(dt.UTC).isoformat()
        assert second.post(SERVICE + "/feedback", json=item).status_code == 200
        stored_at = time.monotonic()
        assert _call(second, example, "pt-1", str(uuid.uuid4())) == []  # at once
        while _call(first, example, "pt-1", str(uuid.uuid4())):
            assert time.monotonic() - stored_at < ttl + 1.0, "first worker never silenced"
            time.sleep(0.05)


def test_retention_prunes_old_cards_in_the_background(
    rules_dir: Path, store_settings: dict[str, Any]
) -> None:
    settings = {**store_settings, "card_retention_days": 1e-6, "prune_interval_seconds": 0.1}
    with _client(rules_dir, **settings) as client:  # cards older than 0.09 s go
        assert _call(client, "restless-back-amisulpride.json", "pt-1", str(uuid.uuid4()))
        _settle(client)
        deadline = time.monotonic() + 10
        while _card_rows(client) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _card_rows(client) == 0


def test_a_repeated_card_is_recorded_again_once_retention_pruned_it(
    store_settings: dict[str, Any],
) -> None:
    url = store_settings.get("database_url") or f"sqlite:///{store_settings['database_path']}"
    with FeedbackStore(url) as store:
        # retention of 8.64 s: the worker remembers a queued card for a quarter of it
        ledger = CardLedger(store, retention_days=1e-4, prune_interval=3600)
        try:
            now = dt.datetime.now(dt.UTC)
            ledger.record_soon([card("c1", issued_at=now)])
            ledger.record_soon([card("c1", issued_at=now)])  # a repeat: not queued again
            asyncio.run(ledger.settle())
            later = now + dt.timedelta(days=1)
            assert store.prune(later, later).cards == 1
            ledger.record_soon([card("c1", issued_at=now)])
            asyncio.run(ledger.settle())
            assert store.report() == []  # still remembered as queued: skipped
            ledger._recorded["c1"] -= 3.0  # as if queued 3 s ago
            ledger.record_soon([card("c1", issued_at=now)])
            asyncio.run(ledger.settle())
            assert store.report()[0].issued == 1  # recorded again: feedback will find it
        finally:
            ledger.close()
