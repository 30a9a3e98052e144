"""scripts/build_valuesets.py: a fresh clone rebuilds rules/valuesets/ exactly, from the
terminology copied into the repository, and a role an author sets survives a rebuild."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cds.settings import bundled_rules_dir
from tests.conftest import ROOT

BUILT = ("drugs.tsv", "drug_products.tsv", "conditions.tsv")


def _script() -> ModuleType:
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
def out(tmp_path: Path) -> Path:
    """An output directory holding the authors' drug_roles.tsv, as rules/valuesets does."""
    target = tmp_path / "valuesets"
    target.mkdir()
    shutil.copy(bundled_rules_dir() / "valuesets" / "drug_roles.tsv", target)
    return target


def test_the_build_reads_only_files_inside_the_repository() -> None:
    script = _script()
    assert script.DEFAULT_TERMINOLOGY == ROOT / "terminology"
    assert (ROOT / "terminology" / "PROVENANCE.md").is_file()


def test_rebuilt_value_sets_equal_the_committed_ones(out: Path) -> None:
    """Run `python scripts/build_valuesets.py` after editing terminology/ or drug_roles.tsv."""
    assert _script().main(["--out", str(out)]) == 0
    committed = bundled_rules_dir() / "valuesets"
    for name in BUILT:
        assert (out / name).read_text(encoding="utf-8") == (committed / name).read_text(
            encoding="utf-8"
        ), name


def test_a_role_changed_by_an_author_survives_a_rebuild(out: Path) -> None:
    roles = out / "drug_roles.tsv"
    text = roles.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("trazodone\t"))
    cells = row.split("\t")
    changed = "\t".join([*cells[:3], "provoking", "Author's review: a cited source, 2026"])
    roles.write_text(text.replace(row, changed), encoding="utf-8")
    script = _script()
    for _ in range(2):  # a second rebuild must not undo it either
        assert script.main(["--out", str(out)]) == 0
    drugs = (out / "drugs.tsv").read_text(encoding="utf-8")
    built = next(line for line in drugs.splitlines() if line.startswith("trazodone\t"))
    assert built.split("\t")[3] == "provoking"
    assert built.split("\t")[-1] == "Author's review: a cited source, 2026"


def test_a_role_without_a_source_stops_the_build(
    out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roles = out / "drug_roles.tsv"
    text = roles.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("bupropion\t"))
    roles.write_text(text.replace(row, "\t".join([*row.split("\t")[:4], ""])), encoding="utf-8")
    line = text[: text.index(row)].count("\n") + 1
    assert _script().main(["--out", str(out)]) == 1
    message = "'bupropion' has no source for its role (a guideline, review or label)"
    assert capsys.readouterr().err == f"error: {roles}:{line}:5: {message}\n"
    assert not (out / "drugs.tsv").exists()
