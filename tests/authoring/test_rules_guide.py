"""RULES.md's worked example, applied to a copy of the rules, still works."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

from cds.authoring import check_rules_dir
from cds.authoring.ruletests import run_rule_cases
from cds.facts import PhraseBook, Terminology
from cds.rulebase import load_rulebase
from cds.settings import bundled_rules_dir
from tests.conftest import EXAMPLES, ROOT

GUIDE = Path(__file__).resolve().parents[2] / "RULES.md"


def _build_valuesets(argv: list[str]) -> int:
    """scripts/build_valuesets.py, run as the guide tells the author to."""
    spec = importlib.util.spec_from_file_location(
        "build_valuesets", ROOT / "scripts" / "build_valuesets.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    result: int = module.main(argv)
    return result


NEW_FILE = re.compile(r"```yaml\n# file: (?P<path>\S+)\n(?P<body>.*?)```", re.DOTALL)


@pytest.fixture
def guided_rules(tmp_path: Path) -> Path:
    """A copy of the bundled rules with every step of the guide applied."""
    target = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), target)
    shutil.copytree(EXAMPLES, tmp_path / "fhir_examples")  # cases refer to the examples
    guide = GUIDE.read_text(encoding="utf-8")
    for block in NEW_FILE.finditer(guide):
        path = target.parent / block["path"]
        path.write_text(f"# file: {block['path']}\n{block['body']}", encoding="utf-8")
    roles = target / "valuesets" / "drug_roles.tsv"
    (row,) = [line for line in guide.splitlines() if line.startswith("trazodone\t")]
    text = roles.read_text(encoding="utf-8")
    (old,) = [line for line in text.splitlines() if line.startswith("trazodone\t")]
    roles.write_text(text.replace(old, row), encoding="utf-8")
    assert _build_valuesets(["--out", str(target / "valuesets")]) == 0
    phrases = target / "phrases" / "en.yaml"
    assert '"must move", fidgety,' in guide
    text = phrases.read_text(encoding="utf-8")
    phrases.write_text(text.replace('"must move",', '"must move", fidgety,'), encoding="utf-8")
    return target


def test_the_guide_creates_a_rule_file_and_a_test_file() -> None:
    paths = [m["path"] for m in NEW_FILE.finditer(GUIDE.read_text(encoding="utf-8"))]
    assert paths == ["rules/50-sleep-assessment.yaml", "rules/tests/sleep-assessment.yaml"]


def test_the_worked_example_checks_and_passes_its_tests(guided_rules: Path) -> None:
    assert check_rules_dir(guided_rules) == []
    base = load_rulebase(guided_rules)
    try:
        results = list(run_rule_cases(base, "restless-cds", "urn:x"))
    finally:
        base.close()
    failed = [(r.name, r.problems) for r in results if not r.passed]
    assert failed == []
    assert "a restless back with insomnia suggests a sleep assessment" in {r.name for r in results}


def test_the_drug_and_phrase_edits_take_effect(guided_rules: Path) -> None:
    terminology = Terminology.load(guided_rules / "valuesets")
    assert terminology.drugs["trazodone"].provoking is True
    phrases = PhraseBook.load(guided_rules / "phrases" / "en.yaml")
    assert "urge_to_move" in phrases.read("legs feel fidgety in the evening").features
    assert "urge_to_move" not in phrases.read("not fidgety").features
