"""The value-set tables of a rules directory (``rules/valuesets/*.tsv``), read and checked
in one pass.

The one reader of these files: the service (``Terminology.load``), ``restless-cds rules
check`` and ``scripts/build_valuesets.py`` all come through here, so a mistake (a missing
column, a malformed code, a bad check digit, a duplicate, a role without a source) gets
the same ``file:line:col`` problem from each, and none of them accepts what another
refuses. ``drugs.tsv`` ingredients are the reference the other tables are checked against.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stdnum import luhn, verhoeff

from cds.errors import Problem

__all__ = [
    "ATC",
    "ICD10CM",
    "LOINC",
    "MIN_SOURCE",
    "ROLES",
    "RXNORM",
    "SNOMED",
    "BrandRow",
    "ConditionRow",
    "DrugRow",
    "ProductRow",
    "RoleRow",
    "Table",
    "ValueSetTables",
    "code_problem",
    "load_valuesets",
    "problem_at",
    "read_labs",
    "read_roles",
    "read_table",
    "split_cell",
]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"

ROLES = ("provoking", "not_provoking", "treatment", "uncertain")
"""A drug's role in restless syndromes (``drugs.tsv`` ``role``, sourced in
``drug_roles.tsv``): only ``provoking`` drugs get dose reviews; ``uncertain`` ones an
observation at most."""

MIN_SOURCE = 20
"""Characters a role's source needs at least: a citation, not a placeholder."""

_FORMATS: dict[str, tuple[str, re.Pattern[str]]] = {
    RXNORM: ("RxNorm", re.compile(r"^[0-9]{1,9}$")),
    ATC: ("ATC", re.compile(r"^[A-Z][0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?$")),
    SNOMED: ("SNOMED CT", re.compile(r"^[1-9][0-9]{5,17}$")),
    ICD10CM: ("ICD-10-CM", re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")),
    LOINC: ("LOINC", re.compile(r"^[0-9]{1,7}-[0-9]$")),
}
CONDITION_SYSTEMS = (SNOMED, ICD10CM)


def code_problem(system: str, code: str) -> str | None:
    """What is wrong with a code of a system, or None: its format, and for SNOMED CT its
    Verhoeff check digit (python-stdnum)."""
    name, pattern = _FORMATS[system]
    if not pattern.match(code):
        return f"malformed {name} code '{code}'"
    if system == SNOMED and not verhoeff.is_valid(code):
        return f"{name} code '{code}' fails its check digit"
    if system == LOINC and not luhn.is_valid(code.replace("-", "")):
        return f"{name} code '{code}' fails its check digit"
    return None


def split_cell(cell: str) -> list[str]:
    """A ``;``-separated cell's parts, blanks dropped."""
    return [part.strip() for part in cell.split(";") if part.strip()]


@dataclass(frozen=True)
class Table:
    """A table's columns: the ones a row must have and the ones it may have."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


DRUGS = Table(
    "drugs.tsv",
    ("ingredient", "drug_class", "subclass", "role", "rxnorm_ingredient", "atc", "role_source"),
    ("brands",),
)
ROLES_TABLE = Table("drug_roles.tsv", ("ingredient", "drug_class", "subclass", "role", "source"))
PRODUCTS = Table("drug_products.tsv", ("rxnorm_code", "display", "ingredients"))
BRANDS = Table("brands.tsv", ("brand", "ingredient"))
CONDITIONS = Table("conditions.tsv", ("category", "concept", "system", "code", "display"))
LABS = Table("labs.tsv", ("loinc", "test", "display", "source"))

Row = tuple[int, dict[str, str], list[str]]
"""A row's line number, its cells by column name (stripped) and the header's names."""


def read_table(path: Path, columns: Sequence[str], problems: list[Problem]) -> list[Row] | None:
    """The rows of a tab-separated file (``#`` comment lines first), with line numbers;
    a missing file, a header without a required column or a row of the wrong width is a
    problem (``None`` when the file cannot be read at all; a bad row is skipped)."""
    if not path.is_file():
        problems.append(Problem(str(path), "missing value-set file"))
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        lines = [(n, line) for n, line in enumerate(handle, 1) if not line.startswith("#")]
    if not lines:
        problems.append(Problem(f"{path}:1:1", "no header line"))
        return None
    header_line, header = lines[0]
    names = header.rstrip("\r\n").split("\t")
    missing = [c for c in columns if c not in names]
    if missing:
        problems.append(Problem(f"{path}:{header_line}:1", f"missing columns: {missing}"))
        return None
    rows: list[Row] = []
    for number, line in lines[1:]:
        if not line.strip():
            continue
        cells = line.rstrip("\r\n").split("\t")
        if len(cells) != len(names):
            msg = f"{len(cells)} cells, the header has {len(names)}"
            problems.append(Problem(f"{path}:{number}:1", msg))
            continue
        rows.append((number, {n: c.strip() for n, c in zip(names, cells, strict=True)}, names))
    return rows


def problem_at(path: Path, row: Row, column: str, message: str) -> Problem:
    """A problem located at a row's cell: ``file:line:col``."""
    line, _, names = row
    return Problem(f"{path}:{line}:{names.index(column) + 1}", message)


@dataclass(frozen=True)
class DrugRow:
    line: int
    ingredient: str
    drug_class: str
    subclass: str
    role: str
    rxnorm: tuple[str, ...]
    atc: tuple[str, ...]
    brands: tuple[str, ...]
    header: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def where(self, path: Path, column: str) -> str:
        return f"{path}:{self.line}:{self.header.index(column) + 1}"


@dataclass(frozen=True)
class RoleRow:
    line: int
    ingredient: str
    drug_class: str
    subclass: str
    role: str
    source: str
    header: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def where(self, path: Path, column: str) -> str:
        return f"{path}:{self.line}:{self.header.index(column) + 1}"


@dataclass(frozen=True)
class ProductRow:
    line: int
    code: str
    display: str
    ingredients: tuple[str, ...]


@dataclass(frozen=True)
class BrandRow:
    line: int
    brand: str
    ingredient: str


@dataclass(frozen=True)
class ConditionRow:
    line: int
    category: str
    concept: str
    system: str
    code: str
    display: str


@dataclass
class ValueSetTables:
    """Every value-set row read (the first of a repeated key); fit to use only when the
    load found no problem."""

    drugs: list[DrugRow] = field(default_factory=list)
    roles: dict[str, RoleRow] = field(default_factory=dict)
    products: list[ProductRow] = field(default_factory=list)
    brands: list[BrandRow] = field(default_factory=list)
    conditions: list[ConditionRow] = field(default_factory=list)


def read_roles(path: Path, problems: list[Problem]) -> dict[str, RoleRow] | None:
    """``drug_roles.tsv``, the authors' sourced roles, by lower-case ingredient: each row
    has a known role and a source, once (``None`` if the file cannot be read). The build
    script reads it through here too."""
    rows = read_table(path, ROLES_TABLE.required, problems)
    if rows is None:
        return None
    roles: dict[str, RoleRow] = {}
    for row in rows:
        line, cells, header = row
        name = cells["ingredient"].lower()
        if name in roles:
            msg = f"'{name}' repeats line {roles[name].line}"
            problems.append(problem_at(path, row, "ingredient", msg))
        if cells["role"] not in ROLES:
            problems.append(problem_at(path, row, "role", f"role is one of {', '.join(ROLES)}"))
        if len(cells["source"]) < MIN_SOURCE:
            msg = f"'{name}' has no source for its role (a guideline, review or label)"
            problems.append(problem_at(path, row, "source", msg))
        role = RoleRow(
            line, name, cells["drug_class"], cells["subclass"], cells["role"], cells["source"],
            tuple(header),
        )  # fmt: skip
        roles.setdefault(name, role)
    return roles


def load_valuesets(directory: Path) -> tuple[ValueSetTables, list[Problem]]:
    """Every table of a value-set directory and every problem found reading it."""
    loader = _Loader(directory)
    loader.drugs()
    loader.roles()
    loader.products()
    loader.brands()
    loader.conditions()
    return loader.tables, loader.problems


class _Loader:
    """One pass over the files, each problem located at its file:line:col."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.problems: list[Problem] = []
        self.tables = ValueSetTables()
        self.ingredients: dict[str, DrugRow] = {}
        self._owners: dict[tuple[str, str], str] = {}

    def _read(self, table: Table) -> tuple[Path, list[Row]]:
        path = self.directory / table.name
        return path, read_table(path, table.required, self.problems) or []

    def _codes(self, path: Path, row: Row, column: str, system: str, owner: str) -> list[str]:
        codes = split_cell(row[1][column])
        for code in codes:
            message = code_problem(system, code)
            other = self._owners.setdefault((system, code), owner)
            if message is None and other != owner:
                message = f"{_FORMATS[system][0]} code '{code}' also belongs to {other}"
            if message:
                self.problems.append(problem_at(path, row, column, message))
        return codes

    def drugs(self) -> None:
        path, rows = self._read(DRUGS)
        for row in rows:
            line, cells, header = row
            name = cells["ingredient"].lower()
            if (first := self.ingredients.get(name)) is not None:
                msg = f"'{name}' repeats line {first.line}"
                self.problems.append(problem_at(path, row, "ingredient", msg))
            if cells["role"] not in ROLES:
                msg = f"role is one of {', '.join(ROLES)}"
                self.problems.append(problem_at(path, row, "role", msg))
            rxnorm = self._codes(path, row, "rxnorm_ingredient", RXNORM, name)
            atc = self._codes(path, row, "atc", ATC, name)
            brands = split_cell(cells.get("brands", ""))
            drug = DrugRow(
                line, name, cells["drug_class"], cells["subclass"], cells["role"],
                tuple(rxnorm), tuple(atc), tuple(brands), tuple(header),
            )  # fmt: skip
            if self.ingredients.setdefault(name, drug) is drug:
                self.tables.drugs.append(drug)

    def roles(self) -> None:
        """drugs.tsv (built from drug_roles.tsv) must agree with it, so a hand edit of
        drugs.tsv cannot drift from the sourced role."""
        path = self.directory / ROLES_TABLE.name
        roles = read_roles(path, self.problems)
        if roles is None:  # its own problem says why; every drug lacking a row would be noise
            return
        self.tables.roles = roles
        drugs_path = self.directory / DRUGS.name
        for name, role in roles.items():
            built = self.ingredients.get(name)
            if built is None:
                msg = f"'{name}' is not in drugs.tsv: run scripts/build_valuesets.py"
                self.problems.append(Problem(role.where(path, "ingredient"), msg))
            elif built.role != role.role:
                msg = (
                    f"drugs.tsv line {built.line} says '{built.role}': drugs.tsv is out of "
                    "date, run scripts/build_valuesets.py"
                )
                self.problems.append(Problem(role.where(path, "role"), msg))
        for name, drug in self.ingredients.items():
            if name not in roles:
                msg = f"'{name}' has no row in drug_roles.tsv (its role and source)"
                self.problems.append(Problem(drug.where(drugs_path, "ingredient"), msg))

    def products(self) -> None:
        path, rows = self._read(PRODUCTS)
        seen: dict[str, int] = {}
        for row in rows:
            line, cells, _ = row
            code = cells["rxnorm_code"]
            if message := code_problem(RXNORM, code):
                self.problems.append(problem_at(path, row, "rxnorm_code", message))
            elif (first := seen.setdefault(code, line)) != line:
                msg = f"'{code}' repeats line {first}"
                self.problems.append(problem_at(path, row, "rxnorm_code", msg))
            ingredients = split_cell(cells["ingredients"])
            for name in ingredients:
                if name not in self.ingredients:
                    msg = f"unknown ingredient '{name}'"
                    self.problems.append(problem_at(path, row, "ingredients", msg))
            product = ProductRow(line, code, cells["display"], tuple(ingredients))
            self.tables.products.append(product)

    def brands(self) -> None:
        """``brands.tsv`` is optional; a brand names one of our ingredients and is not
        itself an ingredient's name (it would shadow that drug)."""
        if not (self.directory / BRANDS.name).is_file():
            return
        path, rows = self._read(BRANDS)
        seen: dict[str, int] = {}
        for row in rows:
            line, cells, _ = row
            brand, ingredient = cells["brand"], cells["ingredient"]
            if ingredient not in self.ingredients:
                msg = f"unknown ingredient '{ingredient}'"
                self.problems.append(problem_at(path, row, "ingredient", msg))
            if brand.lower() in self.ingredients:
                msg = f"'{brand}' is the name of an ingredient, not a brand"
                self.problems.append(problem_at(path, row, "brand", msg))
            elif (first := seen.setdefault(brand.lower(), line)) != line:
                msg = f"'{brand}' repeats line {first}"
                self.problems.append(problem_at(path, row, "brand", msg))
            self.tables.brands.append(BrandRow(line, brand, ingredient))

    def conditions(self) -> None:
        path, rows = self._read(CONDITIONS)
        categories: dict[tuple[str, str], tuple[str, int]] = {}
        for row in rows:
            line, cells, _ = row
            system, code = cells["system"], cells["code"]
            if system not in CONDITION_SYSTEMS:
                msg = f"unknown code system '{system}'"
                self.problems.append(problem_at(path, row, "system", msg))
                continue
            if message := code_problem(system, code):
                self.problems.append(problem_at(path, row, "code", message))
            category, first = categories.setdefault((system, code), (cells["category"], line))
            if category != cells["category"]:
                msg = f"'{code}' is '{category}' on line {first}"
                self.problems.append(problem_at(path, row, "category", msg))
            self.tables.conditions.append(
                ConditionRow(
                    line, cells["category"], cells["concept"], system, code, cells["display"]
                )
            )


def read_labs(path: Path, tests: Collection[str], problems: list[Problem]) -> dict[str, str]:
    """``labs.tsv``: LOINC code -> the test it measures (one of ``tests``). The file is
    optional (no labs read without it); every row needs a well-formed code with a valid
    check digit (LOINC's mod 10), a known test and a source."""
    if not path.is_file():
        return {}
    codes: dict[str, str] = {}
    for row in read_table(path, LABS.required, problems) or []:
        _, cells, _ = row
        code, test = cells["loinc"], cells["test"]
        if (message := code_problem(LOINC, code)) is not None:
            problems.append(problem_at(path, row, "loinc", message))
        elif test not in tests:
            problems.append(
                problem_at(path, row, "test", f"test '{test}' is not one of {sorted(tests)}")
            )
        elif not cells["source"]:
            problems.append(problem_at(path, row, "source", f"{code} has no source"))
        elif code in codes:
            problems.append(problem_at(path, row, "loinc", f"{code} is listed twice"))
        else:
            codes[code] = test
    return codes
