"""Shared fixtures: a clean environment, a fresh engine, the bundled rule base."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cds.engine import runtime
from cds.rulebase import RuleBase, load_rulebase
from cds.settings import Settings, bundled_rules_dir

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "fhir_examples"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test inherits the machine's RESTLESS_CDS_* settings, and no app a test starts
    writes its feedback database into the checkout."""
    for name in list(os.environ):
        if name.startswith("RESTLESS_CDS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RESTLESS_CDS_DATABASE_PATH", str(tmp_path / "feedback.db"))


@pytest.fixture(autouse=True)
def fresh_engine() -> Iterator[None]:
    """Every ruleset a test registers is retired after it (engine state never leaks)."""
    yield
    runtime.reset()


@pytest.fixture
def rules_dir() -> Path:
    return bundled_rules_dir()


@pytest.fixture
def rulebase(rules_dir: Path) -> Iterator[RuleBase]:
    base = load_rulebase(rules_dir)
    yield base
    base.close()


@pytest.fixture
def settings(rules_dir: Path) -> Settings:
    return Settings(rules_dir=rules_dir)


def load_example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def for_patient(body: dict[str, Any], patient: str) -> dict[str, Any]:
    """A hook request moved to another patient: ``context.patientId`` and every
    reference to the old patient, as an EHR would send that patient's own record."""
    old = f'"Patient/{body["context"]["patientId"]}"'
    moved: dict[str, Any] = json.loads(json.dumps(body).replace(old, f'"Patient/{patient}"'))
    moved["context"]["patientId"] = patient
    return moved
