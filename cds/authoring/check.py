"""``restless-cds rules check``: every problem in a rules directory, as file:line:col.

The rule files are checked by the compiler (schema, unknown facts and attributes, refs
to nothing, type mismatches, duplicate ids, card limits); this module adds what the
compiler does not read: the value-set TSVs (columns, malformed or duplicate codes,
ingredients that do not exist) and the phrase file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from pydantic import ValidationError
from stdnum import verhoeff

from cds.engine import load_located_yaml
from cds.errors import Problem, RulesError
from cds.facts.labs import LabCodes, LabCodesError
from cds.facts.phrases import PhraseFile
from cds.facts.terminology import ROLES
from cds.rulebase import (
    PHRASES_DIR,
    RuleBase,
    Snapshot,
    compile_directory,
    from_snapshot,
    load_rulebase,
    take_snapshot,
)

__all__ = ["check_rules_dir", "load_checked_rulebase"]

_RXCUI = re.compile(r"^[0-9]{1,9}$")
_ATC = re.compile(r"^[A-Z][0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?$")
_SNOMED = re.compile(r"^[1-9][0-9]{5,17}$")
_ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_MIN_SOURCE = 20
"""Characters a role's source needs at least: a citation, not a placeholder."""
_SYSTEMS = {
    "http://snomed.info/sct": "snomed",
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm",
}


def verhoeff_valid(number: str) -> bool:
    """Whether a digit string ends in a correct Verhoeff check digit (SNOMED CT ids);
    python-stdnum's implementation, the one the value-set build script uses too."""
    return bool(verhoeff.is_valid(number))


def check_rules_dir(rules_dir: Path) -> list[Problem]:
    """All problems found, empty when the directory is fit to serve."""
    problems: list[Problem] = []
    try:
        compile_directory(rules_dir)
    except RulesError as exc:
        problems.extend(exc.problems)
    problems.extend(_check_phrase_dir(rules_dir / PHRASES_DIR))
    problems.extend(_check_valuesets(rules_dir / "valuesets"))
    problems.extend(_check_labs(rules_dir / "valuesets" / "labs.tsv"))
    return problems


def _check_labs(path: Path) -> list[Problem]:
    """labs.tsv (LOINC code shape, a known test, a source on every row): its first problem."""
    try:
        LabCodes.load(path)
    except LabCodesError as exc:
        return [Problem(f"{exc.path}:{exc.line}:1", exc.message)]
    return []


def load_checked_rulebase(rules_dir: Path, snapshot: Snapshot | None = None) -> RuleBase:
    """The rule base, after every check ``rules check`` makes, compiling the rules once.

    ``serve``, ``create_app`` (however uvicorn is started) and the reload watcher all come
    through here, so none of them serves what ``rules check`` would refuse.
    """
    files = take_snapshot(rules_dir) if snapshot is None else snapshot
    problems = from_snapshot(files, rules_dir, partial(_file_problems, rules_dir))
    try:
        rulebase = load_rulebase(rules_dir, files)
    except RulesError as exc:
        raise RulesError([*exc.problems, *problems]) from exc
    if problems:
        rulebase.close()
        raise RulesError(problems)
    return rulebase


def _file_problems(rules_dir: Path, copy: Path) -> list[Problem]:
    """Phrase and value-set problems of a snapshot's copy, named by the real directory."""
    found = [*_check_phrase_dir(copy / PHRASES_DIR), *_check_valuesets(copy / "valuesets")]
    return [Problem(p.where.replace(str(copy), str(rules_dir)), p.message) for p in found]


def _check_phrase_dir(directory: Path) -> list[Problem]:
    """One phrase file per language (``en.yaml`` required), each checked alone."""
    if not (directory / "en.yaml").is_file():
        return [Problem(str(directory / "en.yaml"), "missing phrase file")]
    return [p for path in sorted(directory.glob("*.yaml")) for p in _check_phrases(path)]


def _check_phrases(path: Path) -> list[Problem]:
    if not path.is_file():
        return [Problem(str(path), "missing phrase file")]
    try:
        located = load_located_yaml(path)
    except RulesError as exc:
        return exc.problems
    try:
        PhraseFile.model_validate(located.data)
    except ValidationError as exc:
        return [
            located.problem(tuple(p for p in e["loc"] if isinstance(p, str | int)), e["msg"])
            for e in exc.errors()
        ]
    return []


_Row = tuple[int, dict[str, str]]


def _read(path: Path, columns: tuple[str, ...], problems: list[Problem]) -> Iterator[_Row]:
    """Rows with their line numbers; a wrong header or a short row is a problem."""
    if not path.is_file():
        problems.append(Problem(str(path), "missing value-set file"))
        return
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [(n, line) for n, line in enumerate(handle, 1) if not line.startswith("#")]
    if not lines:
        problems.append(Problem(f"{path}:1:1", "no header line"))
        return
    header_line, header = lines[0]
    names = header.rstrip("\n").split("\t")
    missing = [c for c in columns if c not in names]
    if missing:
        problems.append(Problem(f"{path}:{header_line}:1", f"missing columns: {missing}"))
        return
    for number, line in lines[1:]:
        if not line.strip():
            continue
        cells = next(csv.reader([line.rstrip("\n")], delimiter="\t", quoting=csv.QUOTE_NONE))
        if len(cells) != len(names):
            msg = f"{len(cells)} cells, the header has {len(names)}"
            problems.append(Problem(f"{path}:{number}:1", msg))
            continue
        yield number, dict(zip(names, cells, strict=True))


def _check_valuesets(directory: Path) -> list[Problem]:
    checker = _ValueSetChecker(directory)
    checker.drugs()
    checker.roles()
    checker.products()
    checker.brands()
    checker.conditions()
    return checker.problems


class _ValueSetChecker:
    """One pass over the value-set files; ingredients of drugs.tsv are the reference."""

    DRUGS = ("ingredient", "drug_class", "role", "rxnorm_ingredient", "atc", "role_source")
    ROLES = ("ingredient", "drug_class", "subclass", "role", "source")
    PRODUCTS = ("rxnorm_code", "display", "ingredients")
    BRANDS = ("brand", "ingredient")
    CONDITIONS = ("category", "concept", "system", "code")

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.problems: list[Problem] = []
        self.ingredients: dict[str, int] = {}
        self._owners: dict[tuple[str, str], str] = {}
        self.roles_in_drugs: dict[str, tuple[int, str]] = {}

    def _at(self, path: Path, line: int, columns: tuple[str, ...], column: str, msg: str) -> None:
        self.problems.append(Problem(f"{path}:{line}:{columns.index(column) + 1}", msg))

    def _rows(self, name: str, columns: tuple[str, ...]) -> tuple[Path, Iterator[_Row]]:
        path = self.directory / name
        return path, _read(path, columns, self.problems)

    def _repeats(self, seen: dict[str, int], key: str, line: int) -> int | None:
        previous = seen.get(key)
        seen.setdefault(key, line)
        return previous

    def drugs(self) -> None:
        path, rows = self._rows("drugs.tsv", self.DRUGS)
        for line, row in rows:
            name = row["ingredient"].strip().lower()
            if (first := self._repeats(self.ingredients, name, line)) is not None:
                self._at(path, line, self.DRUGS, "ingredient", f"'{name}' repeats line {first}")
            if row["role"] not in ROLES:
                self._at(path, line, self.DRUGS, "role", f"role is one of {', '.join(ROLES)}")
            self.roles_in_drugs[name] = (line, row["role"])
            for column, pattern, what in (
                ("rxnorm_ingredient", _RXCUI, "RxNorm"),
                ("atc", _ATC, "ATC"),
            ):
                for code in _codes(row[column]):
                    message = self._code_problem(code, pattern, what, name)
                    if message:
                        self._at(path, line, self.DRUGS, column, message)

    def _code_problem(self, code: str, pattern: re.Pattern[str], what: str, owner: str) -> str:
        if not pattern.match(code):
            return f"malformed {what} code '{code}'"
        other = self._owners.setdefault((what, code), owner)
        return f"{what} code '{code}' also belongs to {other}" if other != owner else ""

    def roles(self) -> None:
        """drug_roles.tsv, the authors' sourced roles: every row cites a source, and
        drugs.tsv (built from it) agrees, so a hand edit of drugs.tsv cannot drift."""
        path, rows = self._rows("drug_roles.tsv", self.ROLES)
        seen: dict[str, int] = {}
        for line, row in rows:
            name = row["ingredient"].strip().lower()
            if (first := self._repeats(seen, name, line)) is not None:
                self._at(path, line, self.ROLES, "ingredient", f"'{name}' repeats line {first}")
            if row["role"] not in ROLES:
                self._at(path, line, self.ROLES, "role", f"role is one of {', '.join(ROLES)}")
            if len(row["source"].strip()) < _MIN_SOURCE:
                msg = f"'{name}' has no source for its role (a guideline, review or label)"
                self._at(path, line, self.ROLES, "source", msg)
            built = self.roles_in_drugs.get(name)
            if built is None:
                msg = f"'{name}' is not in drugs.tsv: run scripts/build_valuesets.py"
                self._at(path, line, self.ROLES, "ingredient", msg)
            elif built[1] != row["role"]:
                msg = (
                    f"drugs.tsv line {built[0]} says '{built[1]}': drugs.tsv is out of date, "
                    "run scripts/build_valuesets.py"
                )
                self._at(path, line, self.ROLES, "role", msg)
        for name, (line, _) in self.roles_in_drugs.items():
            if name not in seen:
                msg = f"'{name}' has no row in drug_roles.tsv (its role and source)"
                self._at(self.directory / "drugs.tsv", line, self.DRUGS, "ingredient", msg)

    def products(self) -> None:
        path, rows = self._rows("drug_products.tsv", self.PRODUCTS)
        seen: dict[str, int] = {}
        for line, row in rows:
            code = row["rxnorm_code"].strip()
            if not _RXCUI.match(code):
                self._at(
                    path, line, self.PRODUCTS, "rxnorm_code", f"malformed RxNorm code '{code}'"
                )
            elif (first := self._repeats(seen, code, line)) is not None:
                self._at(path, line, self.PRODUCTS, "rxnorm_code", f"'{code}' repeats line {first}")
            for name in _codes(row["ingredients"]):
                if name not in self.ingredients:
                    self._at(
                        path, line, self.PRODUCTS, "ingredients", f"unknown ingredient '{name}'"
                    )

    def brands(self) -> None:
        if not (self.directory / "brands.tsv").is_file():
            return
        path, rows = self._rows("brands.tsv", self.BRANDS)
        seen: dict[str, int] = {}
        for line, row in rows:
            if row["ingredient"] not in self.ingredients:
                msg = f"unknown ingredient '{row['ingredient']}'"
                self._at(path, line, self.BRANDS, "ingredient", msg)
            if (first := self._repeats(seen, row["brand"].strip().lower(), line)) is not None:
                self._at(path, line, self.BRANDS, "brand", f"'{row['brand']}' repeats line {first}")

    def conditions(self) -> None:
        path, rows = self._rows("conditions.tsv", self.CONDITIONS)
        categories: dict[tuple[str, str], tuple[str, int]] = {}
        for line, row in rows:
            system, code = row["system"], row["code"].strip()
            kind = _SYSTEMS.get(system)
            if kind is None:
                msg = f"unknown code system '{system}'"
                self._at(path, line, self.CONDITIONS, "system", msg)
                continue
            pattern = _SNOMED if kind == "snomed" else _ICD10CM
            if not pattern.match(code) or (kind == "snomed" and not verhoeff_valid(code)):
                self._at(path, line, self.CONDITIONS, "code", f"malformed {kind} code '{code}'")
            category, first = categories.setdefault((system, code), (row["category"], line))
            if category != row["category"]:
                msg = f"'{code}' is '{category}' on line {first}"
                self._at(path, line, self.CONDITIONS, "category", msg)


def _codes(cell: str) -> list[str]:
    return [c.strip() for c in cell.split(";") if c.strip()]
