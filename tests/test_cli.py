"""The ``restless-cds`` command: eval offline, settings handed to worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cds.cli import export_to_environment, main
from cds.settings import Settings
from tests.conftest import EXAMPLES


def test_settings_survive_the_trip_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = Settings(
        port=8123,
        workers=2,
        rules_dir=tmp_path,
        cors_allow_origins=["https://sandbox.cds-hooks.org", "http://localhost:3000"],
        allow_unauthenticated_remote=True,
    )
    with monkeypatch.context() as patch:
        for name in original.model_dump():
            patch.setenv(f"RESTLESS_CDS_{name.upper()}", "placeholder")
        export_to_environment(original)
        assert Settings() == original


def test_eval_prints_the_cards_of_a_request_file() -> None:
    result = CliRunner().invoke(main, ["eval", str(EXAMPLES / "restless-back-amisulpride.json")])
    assert result.exit_code == 0, result.output
    cards = json.loads(result.output)["cards"]
    assert [c["indicator"] for c in cards] == ["warning"]
    assert "amisulpride" in cards[0]["summary"]


def test_eval_reports_a_bad_request_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hook": "order-select"}', encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(bad)])
    assert result.exit_code == 2
    assert "hookInstance" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_a_public_interface_without_authentication() -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "refusing to serve unauthenticated calls" in result.output
