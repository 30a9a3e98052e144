"""The ``restless-cds`` command: eval offline, settings handed to worker processes."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cds.cli import main
from cds.settings import (
    HANDOFF_VARIABLE,
    Settings,
    bundled_rules_dir,
    settings_from_handoff,
    settings_handoff,
)
from tests.conftest import EXAMPLES
from tests.serving import COMMAND, free_port


def test_settings_and_secrets_reach_workers_through_a_private_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = Settings(
        port=8123,
        workers=2,
        rules_dir=tmp_path,
        cors_allow_origins=["https://sandbox.cds-hooks.org", "http://localhost:3000"],
        allow_unauthenticated_remote=True,
        pseudonym_key="the-real-key",
    )
    with monkeypatch.context() as patch:
        patch.setenv("RESTLESS_CDS_PORT", "9999")  # the handed-down value wins
        with settings_handoff(original) as path:
            assert path.stat().st_mode & 0o777 == 0o600
            assert path.parent.stat().st_mode & 0o777 == 0o700
            handed = settings_from_handoff()
            assert handed == original
            assert handed.pseudonym_key is not None
            assert handed.pseudonym_key.get_secret_value() == "the-real-key"
            # the environment names the file; no secret is in it
            assert all("the-real-key" not in value for value in os.environ.values())
        assert not path.exists()
        assert HANDOFF_VARIABLE not in os.environ


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("RESTLESS_CDS_PORT", "eighty", "RESTLESS_CDS_PORT"),
        ("RESTLESS_CDS_PORT", "70000", "RESTLESS_CDS_PORT"),
        ("RESTLESS_CDS_CORS_ALLOW_ORIGINS", "[not json", "RESTLESS_CDS_CORS_ALLOW_ORIGINS"),
        ("RESTLESS_CDS_LOG_LEVEL", "loud", "RESTLESS_CDS_LOG_LEVEL"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert named in errors[0]


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


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_refuses_invalid_rules_naming_each_problem(tmp_path: Path, workers: str) -> None:
    """serve loads the rules before uvicorn starts (one worker serves that very load): an
    invalid directory prints what ``rules check`` prints, file:line:col, on stderr, and
    exits 1 without listening."""
    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules)
    rule_file = rules / "10-exposure.yaml"
    text = rule_file.read_text(encoding="utf-8")
    rule_file.write_text(text.replace("fact: medication\n", "fact: medicationz\n"), "utf-8")
    tsv = rules / "valuesets" / "conditions.tsv"
    tsv.write_text(tsv.read_text(encoding="utf-8").replace("\t32914008\t", "\t32914009\t"), "utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RESTLESS_CDS_")}
    environment["RESTLESS_CDS_DATABASE_PATH"] = str(tmp_path / "cards.db")
    port = str(free_port())
    result = subprocess.run(
        [*COMMAND, "--rules-dir", "rules", "--port", port, "--workers", workers],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    checked = subprocess.run(
        [*COMMAND[:-1], "rules", "check", "rules"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    problems = [line for line in checked if line.startswith("rules/")]
    assert len(problems) == 3  # two uses of the unknown fact, one bad SNOMED check digit
    assert result.stderr.splitlines() == [
        *problems,
        "refusing to start: invalid rules in rules",
    ]
    assert result.stdout == ""
    assert not (tmp_path / "cards.db").exists()


def test_serve_turns_the_collector_back_on_when_it_stops_early(tmp_path: Path) -> None:
    """serve pauses the garbage collector while it starts: a refusal must not leave it
    off in the calling process."""
    assert gc.isenabled()
    result = CliRunner().invoke(main, ["serve", "--rules-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}: no config.yaml in the rules directory" in result.output
    assert gc.isenabled()
