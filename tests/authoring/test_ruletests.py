"""``rules test``: the cases beside the rules and the example requests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cds.authoring.ruletests import COVERAGE, run_rule_cases
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


def _failures(rules_dir: Path) -> dict[str, list[str]]:
    base = load_rulebase(rules_dir)
    try:
        results = list(run_rule_cases(base, "restless-cds", "urn:x"))
    finally:
        base.close()
    return {r.name: r.problems for r in results if not r.passed}


MISSPELT = """\
library:
  - &back {fact: complaint, region: back, skin_lesion: false, source: Condition/b}
cases:
  - name: a negative case that only passes because of a typo
    facts:
      - {fact: medication, ingredient: amisulpride, provoking: true, current: true}
      - {<<: *back, rest_provokd: true}
    expect:
      cards: []
"""


def test_misspelt_fact_attribute_is_located_not_silently_absent(rules_copy: Path) -> None:
    path = rules_copy / "tests" / "typo.yaml"
    path.write_text(MISSPELT, encoding="utf-8")
    failures = _failures(rules_copy)
    (problem,) = failures["a negative case that only passes because of a typo"]
    line = MISSPELT.splitlines().index("      - {<<: *back, rest_provokd: true}") + 1
    column = MISSPELT.splitlines()[line - 1].index("rest_provokd") + 1
    assert problem == f"{path}:{line}:{column}: 'complaint' has no attribute 'rest_provokd'"


@pytest.mark.parametrize(
    ("fact", "message"),
    [
        ("{fact: complain, region: back}", "unknown fact type 'complain'"),
        ("{fact: complaint, rest_provoked: 'yes'}", "'complaint.rest_provoked' is bool"),
        ("{fact: medication, mg_per_day: true}", "'medication.mg_per_day' is float"),
    ],
)
def test_facts_outside_the_schema_are_problems(rules_copy: Path, fact: str, message: str) -> None:
    text = f"cases:\n  - name: bad fact\n    facts: [{fact}]\n    expect: {{cards: []}}\n"
    (rules_copy / "tests" / "bad.yaml").write_text(text, encoding="utf-8")
    (problem,) = _failures(rules_copy)["bad fact"]
    assert "bad.yaml:3:" in problem
    assert message in problem


@pytest.mark.parametrize("key", ["fired", "not_fired", "cards"])
def test_unknown_rule_ids_in_expectations_are_problems(rules_copy: Path, key: str) -> None:
    text = (
        "cases:\n  - name: names a rule that does not exist\n"
        "    facts: [{fact: complaint, region: back}]\n"
        f"    expect:\n      {key}: [dose-review.no-such-rule]\n"
    )
    (rules_copy / "tests" / "unknown.yaml").write_text(text, encoding="utf-8")
    (problem,) = _failures(rules_copy)["names a rule that does not exist"]
    assert problem.endswith(
        "unknown.yaml:5:" + str(len(key) + 10) + ": no rule 'dose-review.no-such-rule'"
    )


def test_a_derived_fact_rule_is_not_a_card(rules_copy: Path) -> None:
    text = (
        "cases:\n  - name: expects a card from a rule that derives\n"
        "    facts: [{fact: complaint, region: back}]\n"
        "    expect: {cards: [exposure.current-drug]}\n"
    )
    (rules_copy / "tests" / "derive.yaml").write_text(text, encoding="utf-8")
    (problem,) = _failures(rules_copy)["expects a card from a rule that derives"]
    assert "derives a fact, it makes no card" in problem


def test_rules_without_a_firing_or_a_silent_case_are_listed(rules_copy: Path) -> None:
    for path in (rules_copy / "tests").glob("*.yaml"):
        path.unlink()
    text = (
        "cases:\n  - name: only akathisia coded\n"
        "    facts: [{fact: finding, category: akathisia, concept: Akathisia, region: legs,"
        " display: Akathisia, source: Condition/a}]\n"
        "    expect: {cards: []}\n"
    )
    (rules_copy / "tests" / "one.yaml").write_text(text, encoding="utf-8")
    problems = _failures(rules_copy)[COVERAGE]
    assert "rule differential.coded-akathisia: no case where it does not fire" in problems
    assert "rule dose-review.draft-order: no case where it fires" in problems
    assert "rule differential.coded-akathisia: no case where it fires" not in problems


def test_bundled_cases_cover_every_rule_both_ways(rulebase: RuleBase) -> None:
    results = list(run_rule_cases(rulebase, "restless-cds", "urn:x"))
    assert results[-1].name == COVERAGE
    assert results[-1].problems == []
