"""``rules test``: the cases beside the rules and the example requests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cds.authoring.ruletests import run_rule_cases
from cds.cli import main
from cds.rulebase import RuleBase, load_rulebase
from cds.settings import bundled_rules_dir
from tests.conftest import EXAMPLES


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), target)
    # a case's request path is relative to its file: keep the examples beside the copy
    shutil.copytree(EXAMPLES, tmp_path / "fhir_examples")
    return target


def test_bundled_cases_and_examples_pass() -> None:
    result = CliRunner().invoke(main, ["rules", "test"])
    assert result.exit_code == 0, result.output
    passed = int(result.output.strip().splitlines()[-1].split()[0])
    assert passed >= 20


def test_every_card_rule_has_a_case_that_produces_its_card(rulebase: RuleBase) -> None:
    produced: set[str] = set()
    for path in sorted((rulebase.directory / "tests").glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]:
            produced.update(case["expect"].get("cards") or [])
    card_rules = {r.id for r in rulebase.compiled.rules.values() if r.card_template}
    assert card_rules - produced == set()


def test_a_wrong_expectation_fails_with_a_diff(rules_copy: Path) -> None:
    cases = rules_copy / "tests" / "cards.yaml"
    text = cases.read_text(encoding="utf-8")
    cases.write_text(
        text.replace("cards: [dose-review.dose-increase]", "cards: [observation.no-time-link]"),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["rules", "test", str(rules_copy)])
    assert result.exit_code == 1
    assert "FAIL a dose increase without a known onset" in result.output
    assert '-  "observation.no-time-link"' in result.output
    assert '+  "dose-review.dose-increase"' in result.output


def test_invalid_case_file_is_reported(rules_copy: Path) -> None:
    (rules_copy / "tests" / "broken.yaml").write_text("cases:\n  - name: x\n", encoding="utf-8")
    base = load_rulebase(rules_copy)
    try:
        results = [r for r in run_rule_cases(base, "restless-cds", "urn:x") if not r.passed]
    finally:
        base.close()
    assert [r.name for r in results] == ["broken.yaml"]
    assert "invalid case file" in results[0].problems[0]
