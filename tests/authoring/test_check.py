"""``rules check``: value-set, phrase and rule problems located at file:line:col."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cds.authoring import check_rules_dir
from cds.authoring.check import verhoeff_valid
from cds.cli import main
from cds.settings import bundled_rules_dir


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), target)
    return target


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` and return the 1-based line it was on."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return line


def test_bundled_rules_have_no_problems() -> None:
    assert check_rules_dir(bundled_rules_dir()) == []


@pytest.mark.parametrize(
    ("code", "valid"), [("32914008", True), ("230333002", True), ("32914009", False)]
)
def test_snomed_check_digit(code: str, valid: bool) -> None:
    assert verhoeff_valid(code) is valid


def test_malformed_snomed_code_is_located(rules_copy: Path) -> None:
    path = rules_copy / "valuesets" / "conditions.tsv"
    line = _edit(path, "\t32914008\t", "\t32914009\t")
    problems = [str(p) for p in check_rules_dir(rules_copy)]
    assert problems == [f"{path}:{line}:4: malformed snomed code '32914009'"]


def test_duplicate_ingredient_and_unknown_product_ingredient(rules_copy: Path) -> None:
    drugs = rules_copy / "valuesets" / "drugs.tsv"
    text = drugs.read_text(encoding="utf-8")
    amisulpride = next(line for line in text.splitlines() if line.startswith("amisulpride\t"))
    twin = amisulpride.replace("amisulpride", "amisulpridum", 1).replace("N05AL05", "N05AL55")
    drugs.write_text(text + amisulpride + "\n" + twin + "\n", encoding="utf-8")
    products = rules_copy / "valuesets" / "drug_products.tsv"
    line = _edit(products, "\tquetiapine\t", "\tquetiapin\t")
    problems = [str(p) for p in check_rules_dir(rules_copy)]
    assert any("'amisulpride' repeats line" in p for p in problems)
    assert any("RxNorm code '46303' also belongs to amisulpride" in p for p in problems)
    assert f"{products}:{line}:3: unknown ingredient 'quetiapin'" in problems


def test_unknown_attribute_in_a_rule_is_located(rules_copy: Path) -> None:
    path = rules_copy / "30-temporal-link.yaml"
    line = _edit(path, "          current: true\n", "          curent: true\n") + 0
    (problem,) = check_rules_dir(rules_copy)
    assert str(problem).startswith(f"{path}:{line}:11: 'exposure' has no attribute 'curent'")


def test_phrase_file_problem_is_located(rules_copy: Path) -> None:
    path = rules_copy / "phrases" / "en.yaml"
    line = _edit(path, "negation_window: 4", "negation_window: 40")
    (problem,) = check_rules_dir(rules_copy)
    assert str(problem).startswith(f"{path}:{line}:")


def test_cli_exit_status(rules_copy: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["rules", "check", str(rules_copy)])
    assert ok.exit_code == 0
    assert ok.output.startswith("ok: ")
    _edit(rules_copy / "valuesets" / "conditions.tsv", "\t32914008\t", "\t32914009\t")
    bad = runner.invoke(main, ["rules", "check", str(rules_copy)])
    assert bad.exit_code == 1
    assert "malformed snomed code" in bad.output
