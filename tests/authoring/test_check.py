"""``rules check``: value-set, phrase and rule problems located at file:line:col."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cds.authoring import check_rules_dir, load_checked_rulebase
from cds.cli import main
from cds.errors import RulesError
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


def test_malformed_snomed_code_is_located(rules_copy: Path) -> None:
    path = rules_copy / "valuesets" / "conditions.tsv"
    line = _edit(path, "\t32914008\t", "\t32914009\t")
    problems = [str(p) for p in check_rules_dir(rules_copy)]
    assert problems == [f"{path}:{line}:4: SNOMED CT code '32914009' fails its check digit"]


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
    assert "fails its check digit" in bad.output


def _role_line(text: str, ingredient: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"{ingredient}\t"))


def test_a_drug_role_without_a_source_is_refused(rules_copy: Path) -> None:
    """Issue 10: ``rules check`` refuses a drug row without a source."""
    path = rules_copy / "valuesets" / "drug_roles.tsv"
    text = path.read_text(encoding="utf-8")
    row = _role_line(text, "trazodone")
    unsourced = "\t".join([*row.split("\t")[:4], ""])
    line = _edit(path, row, unsourced)
    problems = [str(p) for p in check_rules_dir(rules_copy)]
    assert problems == [
        f"{path}:{line}:5: 'trazodone' has no source for its role (a guideline, review or label)"
    ]
    result = CliRunner().invoke(main, ["rules", "check", str(rules_copy)])
    assert result.exit_code != 0
    assert "no source for its role" in result.output


@pytest.mark.parametrize("placeholder", ["TODO", "see label", "-", "Silber 2021"])
def test_a_placeholder_source_is_refused(rules_copy: Path, placeholder: str) -> None:
    """A word or a bare author-year is not a citation a reader can find."""
    path = rules_copy / "valuesets" / "drug_roles.tsv"
    row = _role_line(path.read_text(encoding="utf-8"), "mirtazapine")
    line = _edit(path, row, "\t".join([*row.split("\t")[:4], placeholder]))
    problems = [str(p) for p in check_rules_dir(rules_copy)]
    assert problems == [
        f"{path}:{line}:5: 'mirtazapine' has no source for its role (a guideline, review or label)"
    ]


def test_an_unknown_role_is_refused(rules_copy: Path) -> None:
    path = rules_copy / "valuesets" / "drug_roles.tsv"
    row = _role_line(path.read_text(encoding="utf-8"), "bupropion")
    line = _edit(path, row, row.replace("\tnot_provoking\t", "\tsafe\t"))
    problems = [str(p) for p in check_rules_dir(rules_copy)]
    assert f"{path}:{line}:4: role is one of provoking, not_provoking, treatment, uncertain" in (
        problems
    )


def test_a_hand_edited_drugs_tsv_role_is_reported_as_out_of_date(rules_copy: Path) -> None:
    """drugs.tsv is built from drug_roles.tsv: editing its role alone would be undone by the
    next rebuild, so the check says where the role belongs."""
    drugs = rules_copy / "valuesets" / "drugs.tsv"
    row = _role_line(drugs.read_text(encoding="utf-8"), "bupropion")
    _edit(drugs, row, row.replace("\tnot_provoking\t", "\tprovoking\t"))
    problems = [str(p) for p in check_rules_dir(rules_copy)]
    (problem,) = problems
    assert "drug_roles.tsv" in problem
    assert "drugs.tsv is out of date, run scripts/build_valuesets.py" in problem


def test_a_drug_without_a_role_row_is_refused(rules_copy: Path) -> None:
    roles = rules_copy / "valuesets" / "drug_roles.tsv"
    row = _role_line(roles.read_text(encoding="utf-8"), "mianserin")
    _edit(roles, row + "\n", "")
    problems = [str(p) for p in check_rules_dir(rules_copy)]
    assert any("'mianserin' has no row in drug_roles.tsv" in p for p in problems)


# serve, the app's lifespan and hot reload load through ``load_checked_rulebase``: what it
# refuses, and how it words it, must be exactly what ``rules check`` prints

BREAKAGES = {
    "rule YAML syntax": ("10-exposure.yaml", "rules:\n", "rules: x: y\n"),
    "unknown fact": ("10-exposure.yaml", "fact: medication\n", "fact: medicationz\n"),
    "LOINC check digit": ("valuesets/labs.tsv", "2276-4\t", "2276-5\t"),
    "SNOMED check digit": ("valuesets/conditions.tsv", "\t32914008\t", "\t32914009\t"),
    "phrase schema": ("phrases/en.yaml", "\nregions:", "\nregionz:"),
    "phrase YAML syntax": ("phrases/es.yaml", "\n", "\nbroken: [1, 2\n"),
}


@pytest.mark.parametrize("breakage", BREAKAGES.values(), ids=BREAKAGES.keys())
def test_loading_refuses_what_rules_check_refuses_in_its_words(
    rules_copy: Path, breakage: tuple[str, str, str]
) -> None:
    name, old, new = breakage
    _edit(rules_copy / name, old, new)
    expected = [str(p) for p in check_rules_dir(rules_copy)]
    assert expected
    assert all(p.startswith(f"{rules_copy}/") for p in expected)
    with pytest.raises(RulesError) as refused:
        load_checked_rulebase(rules_copy)
    assert [str(p) for p in refused.value.problems] == expected


def test_loading_a_missing_phrase_file_names_it_once(rules_copy: Path) -> None:
    (rules_copy / "phrases" / "en.yaml").unlink()
    with pytest.raises(RulesError) as refused:
        load_checked_rulebase(rules_copy)
    assert [str(p) for p in refused.value.problems] == [
        f"{rules_copy}/phrases/en.yaml: missing phrase file"
    ]


def test_problems_name_the_rules_directory_as_given(
    rules_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit(rules_copy / "10-exposure.yaml", "fact: medication\n", "fact: medicationz\n")
    monkeypatch.chdir(rules_copy.parent)
    with pytest.raises(RulesError) as refused:
        load_checked_rulebase(Path("rules"))
    problems = [str(p) for p in refused.value.problems]
    assert problems == [str(p) for p in check_rules_dir(Path("rules"))]
    assert problems[0].startswith("rules/10-exposure.yaml:")
