"""One value-set loader: each mistake gets the same file:line:col problem from the service
(``Terminology.load``, ``load_checked_rulebase``), ``rules check`` and the build script."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from cds.authoring import check_rules_dir
from cds.authoring.check import load_checked_rulebase
from cds.errors import RulesError
from cds.facts import Terminology
from cds.facts.valuesets import ICD10CM, RXNORM, SNOMED, code_problem, load_valuesets
from cds.settings import bundled_rules_dir
from tests.conftest import ROOT


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_valuesets", ROOT / "scripts" / "build_valuesets.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), target)
    return target


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` (which must be there) and return its 1-based line."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def _row(path: Path, first_cell: str) -> str:
    text = path.read_text(encoding="utf-8")
    return next(line for line in text.splitlines() if line.startswith(f"{first_cell}\t"))


def _missing_column(vs: Path) -> tuple[str, int, str]:
    line = _edit(vs / "drug_roles.tsv", "\trole\tsource\n", "\trole\tcitation\n")
    return "drug_roles.tsv", line, "1: missing columns: ['source']"


def _role_without_source(vs: Path) -> tuple[str, int, str]:
    row = _row(vs / "drug_roles.tsv", "trazodone")
    line = _edit(vs / "drug_roles.tsv", row, "\t".join([*row.split("\t")[:4], "see notes"]))
    msg = "5: 'trazodone' has no source for its role (a guideline, review or label)"
    return "drug_roles.tsv", line, msg


def _duplicate_role(vs: Path) -> tuple[str, int, str]:
    row = _row(vs / "drug_roles.tsv", "amisulpride")
    first = _edit(vs / "drug_roles.tsv", row, f"{row}\n{row}")
    return "drug_roles.tsv", first + 1, f"1: 'amisulpride' repeats line {first}"


def _bad_atc_code(vs: Path) -> tuple[str, int, str]:
    line = _edit(vs / "drugs.tsv", "\tN05AL05\t", "\tN5AL05\t")
    return "drugs.tsv", line, "6: malformed ATC code 'N5AL05'"


def _bad_check_digit(vs: Path) -> tuple[str, int, str]:
    line = _edit(vs / "conditions.tsv", "\t32914008\t", "\t32914009\t")
    return "conditions.tsv", line, "4: SNOMED CT code '32914009' fails its check digit"


def _bad_icd_code(vs: Path) -> tuple[str, int, str]:
    line = _edit(vs / "conditions.tsv", "\tG25.81\t", "\tG2581X\t")
    return "conditions.tsv", line, "4: malformed ICD-10-CM code 'G2581X'"


def _duplicate_product(vs: Path) -> tuple[str, int, str]:
    path = vs / "drug_products.tsv"
    text = path.read_text(encoding="utf-8")
    header = next(n for n, line in enumerate(text.splitlines(), 1) if not line.startswith("#"))
    row = text.splitlines()[header]  # the first data row
    path.write_text(text + row + "\n", encoding="utf-8")
    code = row.split("\t")[0]
    return "drug_products.tsv", text.count("\n") + 1, f"1: '{code}' repeats line {header + 1}"


def _short_row(vs: Path) -> tuple[str, int, str]:
    row = _row(vs / "drugs.tsv", "sertraline")
    line = _edit(vs / "drugs.tsv", row, "\t".join(row.split("\t")[:5]))
    return "drugs.tsv", line, "1: 5 cells, the header has 10"


def _brand_of_no_drug(vs: Path) -> tuple[str, int, str]:
    text = (vs / "brands.tsv").read_text(encoding="utf-8")
    (vs / "brands.tsv").write_text(text + "Madeupzine\tmadeupine\ttest\n", encoding="utf-8")
    return "brands.tsv", text.count("\n") + 1, "2: unknown ingredient 'madeupine'"


MISTAKES: dict[str, Callable[[Path], tuple[str, int, str]]] = {
    "missing column": _missing_column,
    "role without a source": _role_without_source,
    "duplicate role": _duplicate_role,
    "malformed ATC code": _bad_atc_code,
    "SNOMED CT check digit": _bad_check_digit,
    "malformed ICD-10-CM code": _bad_icd_code,
    "duplicate product code": _duplicate_product,
    "short row": _short_row,
    "brand of no drug": _brand_of_no_drug,
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_gets_the_same_located_problem_from_service_and_check(
    rules: Path, mistake: str
) -> None:
    vs = rules / "valuesets"
    name, line, located = MISTAKES[mistake](vs)
    expected = f"{vs / name}:{line}:{located}"
    _, problems = load_valuesets(vs)
    found = [str(p) for p in problems]
    assert found[0] == expected
    with pytest.raises(RulesError) as service:
        Terminology.load(vs)
    assert [str(p) for p in service.value.problems] == found
    assert [str(p) for p in check_rules_dir(rules)] == found


def test_an_unreadable_drug_roles_file_is_one_problem_not_one_per_drug(rules: Path) -> None:
    vs = rules / "valuesets"
    name, line, located = _missing_column(vs)
    assert [str(p) for p in load_valuesets(vs)[1]] == [f"{vs / name}:{line}:{located}"]


def test_the_service_refuses_to_start_on_the_same_problems_once_each(rules: Path) -> None:
    name, line, located = _bad_check_digit(rules / "valuesets")
    with pytest.raises(RulesError) as start:
        load_checked_rulebase(rules)
    assert [str(p) for p in start.value.problems] == [
        f"{rules / 'valuesets' / name}:{line}:{located}"
    ]


@pytest.mark.parametrize("mistake", ["missing column", "role without a source", "duplicate role"])
def test_the_build_reports_a_drug_roles_mistake_as_the_service_does(
    rules: Path, mistake: str, capsys: pytest.CaptureFixture[str]
) -> None:
    vs = rules / "valuesets"
    name, line, located = MISTAKES[mistake](vs)
    before = (vs / "drugs.tsv").read_bytes()
    assert _build_script().main(["--out", str(vs)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors == [f"error: {vs / name}:{line}:{located}"]
    assert (vs / "drugs.tsv").read_bytes() == before  # nothing written


BAD_SOURCE_CODES = [
    ("medications.tsv", "\tN05AL05\t", "\tN5AL05\t", 5, "malformed ATC code 'N5AL05'"),
    ("medications.tsv", "\t46303\t", "\t46303x\t", 4, "malformed RxNorm code '46303x'"),
    (
        "conditions.tsv",
        "\t32914008\t",
        "\t32914009\t",
        3,
        "SNOMED CT code '32914009' fails its check digit",
    ),
    ("conditions.tsv", "\tG25.81\t", "\tG2581X\t", 5, "malformed ICD-10-CM code 'G2581X'"),
]


@pytest.mark.parametrize("case", BAD_SOURCE_CODES)
def test_the_build_refuses_a_bad_code_in_its_sources_in_the_loaders_words(
    tmp_path: Path, case: tuple[str, str, str, int, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Once a warning ("kept as given") that wrote a code the service then refused."""
    source, old, new, column, message = case
    terminology = tmp_path / "terminology"
    shutil.copytree(ROOT / "terminology", terminology)
    out = tmp_path / "valuesets"
    out.mkdir()
    shutil.copy(bundled_rules_dir() / "valuesets" / "drug_roles.tsv", out)
    line = _edit(terminology / source, old, new)
    argv = ["--terminology", str(terminology), "--out", str(out)]
    assert _build_script().main(argv) == 1
    errors = [e for e in capsys.readouterr().err.splitlines() if e.startswith("error: ")]
    assert errors == [f"error: {terminology / source}:{line}:{column}: {message}"]
    assert not (out / "drugs.tsv").exists()


def test_the_build_does_not_write_what_the_service_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A brands.tsv row naming a drug the new build no longer has: the built files are
    loaded by the service's loader first, and not written."""
    out = tmp_path / "valuesets"
    out.mkdir()
    for name in ("drug_roles.tsv", "brands.tsv"):
        shutil.copy(bundled_rules_dir() / "valuesets" / name, out)
    brands = out / "brands.tsv"
    brands.write_text(
        brands.read_text(encoding="utf-8") + "Madeupzine\tmadeupine\ttest\n", encoding="utf-8"
    )
    line = brands.read_text(encoding="utf-8").count("\n")
    assert _build_script().main(["--out", str(out)]) == 1
    errors = [e for e in capsys.readouterr().err.splitlines() if e.startswith("error: ")]
    assert errors == [f"error: {brands}:{line}:2: unknown ingredient 'madeupine'"]
    assert not (out / "drugs.tsv").exists()


@pytest.mark.parametrize(
    ("system", "code", "problem"),
    [
        (SNOMED, "32914008", None),
        (SNOMED, "230333002", None),
        (SNOMED, "32914009", "SNOMED CT code '32914009' fails its check digit"),
        (SNOMED, "0123456", "malformed SNOMED CT code '0123456'"),
        (ICD10CM, "G25.81", None),
        (ICD10CM, "g25.81", "malformed ICD-10-CM code 'g25.81'"),
        (RXNORM, "46303", None),
        (RXNORM, "1234567890", "malformed RxNorm code '1234567890'"),
    ],
)
def test_code_problem(system: str, code: str, problem: str | None) -> None:
    assert code_problem(system, code) == problem
