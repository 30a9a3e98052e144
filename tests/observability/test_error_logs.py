"""An unexpected error (500) is logged with its frames and type, never its message, which
may quote a patient's record."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.settings import Settings
from tests.conftest import load_example

MARKER = "mkrecord7319"


class _BrokenRules:
    """Stands in for the rule holder: reading the rules fails with record text."""

    @property
    def current(self) -> object:
        raise RuntimeError(f"could not read note {MARKER}")

    def lease(self) -> object:
        raise RuntimeError(f"could not read note {MARKER}")


def test_a_500_logs_no_message_text(rules_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(rules_dir=rules_dir, reload_interval_seconds=0))
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.INFO):
        app.state.rules = _BrokenRules()
        body = load_example("restless-back-amisulpride.json")
        response = client.post("/cds-services/restless-order-select", json=body)
    assert response.status_code == 500
    assert MARKER not in response.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors, "the 500 was not logged"
    assert "RuntimeError" in errors[0].getMessage()
    assert "in lease" in errors[0].traceback  # type: ignore[attr-defined]
    assert MARKER not in caplog.text
    assert all(MARKER not in str(vars(record)) for record in caplog.records)
