"""The feedback endpoint (#feedback), card records and the suppression loop."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.cli import main
from cds.hooks.feedback import CardLedger
from cds.settings import Settings
from tests.conftest import for_patient, load_example

SERVICE = "/cds-services/restless-order-select"
FEEDBACK = f"{SERVICE}/feedback"
WHEN = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "fb.db"


@pytest.fixture
def client(database: Path, rules_dir: Path):
    with TestClient(create_app(Settings(rules_dir=rules_dir, database_path=database))) as c:
        yield c


def _card(client: TestClient, patient: str = "rbs-50m") -> dict[str, Any] | None:
    body = for_patient(load_example("restless-back-amisulpride.json"), patient)
    cards = client.post(SERVICE, json=body).json()["cards"]
    return cards[0] if cards else None


def _settle(client: TestClient) -> None:
    """Wait for the card records the app writes just after each response."""
    assert client.portal is not None
    ledger: CardLedger = client.app.state.card_ledger  # type: ignore[attr-defined]
    client.portal.call(ledger.settle)


def _override(card: dict[str, Any], code: str) -> dict[str, Any]:
    reason = next(r for r in card["overrideReasons"] if r["code"] == code)
    return {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": reason, "userComment": "pt rbs-50m says fine"},
        "outcomeTimestamp": WHEN,
    }


def test_accepted_feedback_is_stored_once(client: TestClient) -> None:
    card = _card(client)
    assert card is not None
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": WHEN,
    }
    first = client.post(FEEDBACK, json={"feedback": [item]})
    assert first.status_code == 200
    assert first.json() == {"stored": 1, "duplicates": 0}
    again = client.post(FEEDBACK, json=item)  # a bare object, as some clients send
    assert again.json() == {"stored": 0, "duplicates": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"outcome": "ignored"}, "feedback.0.outcome"),
        ({"outcomeTimestamp": "2026-11-21T09:30:00"}, "feedback.0.outcomeTimestamp"),
        ({"outcomeTimestamp": None}, "feedback.0.outcomeTimestamp"),
        ({"card": 7}, "feedback.0.card"),
    ],
)
def test_invalid_feedback_is_a_400_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    card = _card(client)
    assert card is not None
    item = {**_override(card, "already-aware"), **change}
    response = client.post(FEEDBACK, json={"feedback": [item]})
    assert response.status_code == 400
    assert field in {e for i in response.json()["issue"] for e in i.get("expression", [])}


def test_accepted_without_suggestions_and_malformed_json_are_400(client: TestClient) -> None:
    card = _card(client)
    assert card is not None
    item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": WHEN}
    assert client.post(FEEDBACK, json={"feedback": [item]}).status_code == 400
    assert client.post(FEEDBACK, content=b"{not json").status_code == 400
    assert client.post(FEEDBACK, json={"feedback": []}).status_code == 400


def test_feedback_for_a_card_never_issued_is_rejected(client: TestClient) -> None:
    card = _card(client)
    assert card is not None
    good = _override(card, "already-aware")
    unknown = {**good, "card": "00000000-0000-4000-8000-000000000000"}
    response = client.post(FEEDBACK, json={"feedback": [good, unknown]})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["feedback.1.card"]
    # all or nothing: the good item was not stored either
    assert client.post(FEEDBACK, json=good).json() == {"stored": 1, "duplicates": 0}
    other_service = client.post("/cds-services/restless-order-sign/feedback", json=good)
    assert other_service.status_code == 400


def test_already_addressed_override_silences_the_rule_for_that_patient(
    client: TestClient,
) -> None:
    card = _card(client)
    assert card is not None
    assert client.post(FEEDBACK, json=_override(card, "already-aware")).status_code == 200
    assert _card(client) is None  # order-select fires again on the changed order: quiet
    assert _card(client) is None
    assert _card(client, patient="another-patient") is not None


def test_an_override_that_disagrees_does_not_silence(client: TestClient) -> None:
    card = _card(client)
    assert card is not None
    client.post(FEEDBACK, json=_override(card, "judged-psychiatric"))
    assert _card(client) is not None


def test_no_patient_id_or_comment_in_the_database(client: TestClient, database: Path) -> None:
    card = _card(client)
    assert card is not None
    client.post(FEEDBACK, json=_override(card, "already-aware"))
    _settle(client)
    connection = sqlite3.connect(database)
    try:
        tables = [
            r[0] for r in connection.execute("select name from sqlite_master where type='table'")
        ]
        dump = "\n".join(
            repr(row) for table in tables for row in connection.execute(f'select * from "{table}"')
        )
    finally:
        connection.close()
    assert card["uuid"] in dump
    assert "rbs-50m" not in dump
    assert "says fine" not in dump


def test_report_counts_per_rule(client: TestClient, database: Path, monkeypatch) -> None:
    card = _card(client)
    assert card is not None
    client.post(FEEDBACK, json=_override(card, "already-aware"))
    _card(client, patient="p2")
    _settle(client)  # the second card's record is written just after its response
    monkeypatch.setenv("RESTLESS_CDS_DATABASE_PATH", str(database))
    result = CliRunner().invoke(main, ["feedback", "report", "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["rule_id"] == "dose-review.draft-order"
    assert (row["issued"], row["accepted"], row["overridden"]) == (2, 0, 1)
    assert row["override_reasons"] == {"already-aware": 1}
    assert row["acceptance_rate"] == 0.0
    table = CliRunner().invoke(main, ["feedback", "report"]).output
    assert "dose-review.draft-order" in table
    assert "already-aware x1" in table
    csv_out = CliRunner().invoke(main, ["feedback", "report", "--format", "csv"]).output
    assert csv_out.splitlines()[0].startswith("rule,rules_version,issued")


def test_feedback_from_the_future_is_refused(client: TestClient) -> None:
    card = _card(client)
    assert card is not None
    item = {**_override(card, "already-aware"), "outcomeTimestamp": "2999-01-01T00:00:00Z"}
    response = client.post(FEEDBACK, json=item)
    assert response.status_code == 400
    assert _card(client) is not None  # nothing was silenced


def test_cards_are_shown_when_the_feedback_store_is_down(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    calls: list[str] = []

    def broken(*args: Any) -> list[Any]:
        calls.append("read")
        raise OperationalError("select", {}, Exception("database is down"))

    ledger = client.app.state.card_ledger  # type: ignore[attr-defined]
    monkeypatch.setattr(ledger.store, "suppressions", broken)  # the hook path's only read
    assert _card(client) is not None
    assert calls == ["read"]  # the read was tried (and failed), not skipped


def test_card_records_are_written_after_the_response_and_never_lost(
    database: Path, rules_dir: Path
) -> None:
    settings = Settings(rules_dir=rules_dir, database_path=database)
    uuids = []
    with TestClient(create_app(settings)) as client:
        for n in range(5):
            card = _card(client, patient=f"p{n}")
            assert card is not None
            uuids.append(card["uuid"])
    # the app has shut down: every record was settled before the store closed
    connection = sqlite3.connect(database)
    try:
        stored = {row[0] for row in connection.execute("select card_uuid from issued_cards")}
    finally:
        connection.close()
    assert set(uuids) <= stored
