#!/usr/bin/env python3
"""Build the rule value-set files in rules/valuesets/ from terminology/ (in the repository).

Inputs (see terminology/README.md and terminology/PROVENANCE.md):
  medications.tsv   one row per ingredient: class, RxNorm IN RXCUIs, ATC codes, source
  conditions.tsv    one row per clinical concept: SNOMED CT and ICD-10-CM codes, source
  vsac/*.json       VSAC ValueSet expansions with product-level (SCD/SBD/pack) RxNorm codes

Outputs (tab-separated, UTF-8, "\\n" line endings, sorted rows, "# " comment lines first):
  drugs.tsv          one row per ingredient of medications.tsv
  drug_products.tsv  one row per distinct RxNorm code in the VSAC expansions that names
                     at least one of our ingredients
  conditions.tsv     one row per (concept, code) for SNOMED CT and ICD-10-CM codes

No code is made up here: every code written comes from an input file, and every row keeps
the text it came from (the source column, or the VSAC display and value-set OIDs).

Reads and checks through the service's own value-set loader (``cds.facts.valuesets``): the
input tables, drug_roles.tsv and every code get the same file:line:col problems as
``restless-cds rules check``, and the built files are loaded by it before they replace the
old ones, so a build never writes what the service would refuse.

Usage:  python scripts/build_valuesets.py [--terminology DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cds.errors import Problem
from cds.facts.valuesets import (
    ICD10CM,
    RXNORM,
    SNOMED,
    RoleRow,
    Row,
    code_problem,
    load_valuesets,
    problem_at,
    read_roles,
    read_table,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TERMINOLOGY = REPO_ROOT / "terminology"  # copied in; see terminology/PROVENANCE.md
DEFAULT_OUT = REPO_ROOT / "rules" / "valuesets"
BUILT = ("drugs.tsv", "drug_products.tsv", "conditions.tsv")

SCRIPT_NAME = "scripts/build_valuesets.py"
INPUT_LABEL = "terminology"

RXNORM_SYSTEM = RXNORM
SNOMED_SYSTEM = SNOMED
ICD10CM_SYSTEM = ICD10CM
ATC_SYSTEM = "http://www.whocc.no/atc"

# A drug's role comes from rules/valuesets/drug_roles.tsv (written by rule authors, with a
# source for each), not from its class: the build never overwrites that file.

MEDICATION_COLUMNS = (
    "ingredient",
    "drug_class",
    "subclass",
    "rxnorm_in_rxcui",
    "atc_code",
    "source",
    "verified",
    "notes",
)
CONDITION_COLUMNS = (
    "concept",
    "category",
    "snomed_ct",
    "snomed_display",
    "icd10cm",
    "source",
    "verified",
    "notes",
)

DRUGS_HEADER = (
    "ingredient",
    "drug_class",
    "subclass",
    "role",
    "rxnorm_ingredient",
    "atc",
    "brands",
    "verified",
    "source",
    "role_source",
)
PRODUCTS_HEADER = ("rxnorm_code", "display", "ingredients", "brand", "valuesets")
# Clinical re-filing of source categories, each with its reason.
CATEGORY_OVERRIDES = {
    # Non-specific restlessness and agitation (R45.1) is not a rest-provoked syndrome:
    # filed under restless_syndrome it would read psychiatric agitation as coded RLS.
    "Restlessness and agitation (non-specific)": "agitation",
}

CONDITIONS_HEADER = ("category", "concept", "system", "code", "display", "verified", "source")

RXCUI_RE = re.compile(r"^[0-9]{1,9}$")
# "ICD-10-CM titles: G47.00=Insomnia, unspecified; G47.01=Insomnia due to medical condition"
ICD_TITLES_MARKER = "ICD-10-CM titles:"
ICD_TITLE_SPLIT_RE = re.compile(r";\s*(?=[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?=)")
NUMBER_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
TRAILING_BRAND_RE = re.compile(r"^(?P<body>.*?)\s*\[(?P<brand>[^\[\]]+)\]$")
PACK_ITEM_RE = re.compile(r"^(?P<count>[0-9]+) \((?P<product>.*)\)$")


class InputError(Exception):
    """An input file is missing or malformed; ``problems`` are file:line:col located."""

    def __init__(self, problems: Sequence[Problem | str]) -> None:
        self.problems = [str(p) for p in problems]
        super().__init__("\n".join(self.problems))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- reading


def read_tsv(path: Path, expected_columns: Sequence[str]) -> list[Row]:
    """A tab-separated input with the columns expected, each row with its line number."""
    problems: list[Problem] = []
    rows = read_table(path, expected_columns, problems)
    if problems or rows is None:
        raise InputError(problems)
    return rows


def split_codes(cell: str) -> list[str]:
    """Split a ';'-separated code cell, keeping order and dropping blanks and repeats."""
    codes: list[str] = []
    for part in cell.split(";"):
        code = part.strip()
        if code and code not in codes:
            codes.append(code)
    return codes


@dataclass(frozen=True)
class Concept:
    """One RxNorm concept from a VSAC expansion."""

    code: str
    display: str


@dataclass
class ValueSet:
    oid: str
    title: str
    path: Path
    concepts: list[Concept] = field(default_factory=list)


def _walk_contains(items: Any, where: str) -> Iterator[dict[str, Any]]:
    """Yield expansion.contains entries, descending into nested contains."""
    if not isinstance(items, list):
        raise InputError([f"{where}: expansion.contains is not a list"])
    for item in items:
        if not isinstance(item, dict):
            raise InputError([f"{where}: contains entry is not an object"])
        yield item
        if "contains" in item:
            yield from _walk_contains(item["contains"], where)


def read_valueset(path: Path) -> ValueSet:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError([f"{path}: not valid JSON ({exc})"]) from exc
    if not isinstance(data, dict) or data.get("resourceType") != "ValueSet":
        raise InputError([f"{path}: not a FHIR ValueSet"])
    oid = str(data.get("id") or str(data.get("url", "")).rsplit("/", 1)[-1])
    if not oid:
        raise InputError([f"{path}: ValueSet has neither id nor url"])
    expansion = data.get("expansion")
    if not isinstance(expansion, dict):
        raise InputError([f"{path}: ValueSet has no expansion"])
    title = str(data.get("title") or data.get("name") or "")
    valueset = ValueSet(oid=oid, title=title, path=path)
    for item in _walk_contains(expansion.get("contains", []), str(path)):
        code = item.get("code")
        if code is None:  # abstract grouping entry
            continue
        system = item.get("system")
        if system != RXNORM_SYSTEM:
            warn(f"{path.name}: skipping code {code} from non-RxNorm system {system}")
            continue
        display = str(item.get("display", "")).strip()
        code = str(code).strip()
        if not RXCUI_RE.match(code):
            warn(f"{path.name}: RxNorm code {code!r} does not look like an RXCUI")
        valueset.concepts.append(Concept(code=code, display=display))
    return valueset


# --------------------------------------------------------------------- RxNorm display parsing


def split_top_level(text: str, separator: str = " / ") -> list[str]:
    """Split text on separator, ignoring separators inside (), [] or {}."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def substance_of(component: str) -> str:
    """Return the substance name of one ingredient component of an RxNorm name.

    RxNorm writes clinical drug names as
        [quantity] [qualitative distinction] [duration] substance strength [/ ...] dose form
    e.g. "0.25 ML paliperidone palmitate 156 MG/ML Prefilled Syringe",
    "Smoking Cessation 12 HR bupropion hydrochloride 150 MG Extended Release Oral Tablet",
    "chlordiazepoxide 5 MG Oral Tablet".  Quantities, durations and strengths are numbers
    followed by upper-case units; qualitative distinctions ("PMDD", "Sensor", "Sprinkle")
    and dose forms are capitalised; substance names are lower case.  So: skip leading numbers
    and capitalised words, then take the run of words up to the next number or capitalised word.
    """
    tokens = component.split()
    i = 0
    while i < len(tokens) and (NUMBER_RE.match(tokens[i]) or tokens[i][:1].isupper()):
        i += 1
    words: list[str] = []
    while i < len(tokens) and not (NUMBER_RE.match(tokens[i]) or tokens[i][:1].isupper()):
        words.append(tokens[i])
        i += 1
    return " ".join(words)


@dataclass(frozen=True)
class ParsedDisplay:
    substances: tuple[str, ...]  # as written, in display order, e.g. "lithium carbonate"
    brand: str  # bracketed brand of an SBD/BPCK display, else ""


def parse_display(display: str) -> ParsedDisplay:
    """Parse an RxNorm SCD/SBD/GPCK/BPCK display into substances and brand."""
    text = display.strip()
    brand = ""
    match = TRAILING_BRAND_RE.match(text)
    if match:
        text, brand = match.group("body"), match.group("brand").strip()
    substances: list[str] = []
    if text.startswith("{"):
        # Pack: "{1 (24 HR quetiapine 200 MG ...) / 11 (...) } Pack"
        close = text.rfind("}")
        inner = text[1:close] if close > 0 else text[1:]
        for item in split_top_level(inner):
            if not item:
                continue
            pack_match = PACK_ITEM_RE.match(item)
            product = pack_match.group("product") if pack_match else item
            substances.extend(parse_display(product).substances)
    else:
        for component in split_top_level(text):
            substance = substance_of(component)
            if substance:
                substances.append(substance)
    unique = tuple(dict.fromkeys(substances))
    return ParsedDisplay(substances=unique, brand=brand)


class IngredientMatcher:
    """Map a substance name ("sertraline hydrochloride") to one of our ingredient names."""

    def __init__(self, ingredients: Iterable[str]) -> None:
        # Longest first, so a longer name wins over a shorter one that is its first word.
        self._names = sorted({name.lower() for name in ingredients}, key=lambda n: (-len(n), n))
        self._mention_res = {
            name: re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)
            for name in self._names
        }

    def match(self, substance: str) -> str | None:
        lowered = substance.lower()
        for name in self._names:
            # whole words at the start: the ingredient itself or one of its salts/esters
            if lowered == name or lowered.startswith(name + " "):
                return name
        return None

    def mentioned(self, display: str) -> list[str]:
        """Our ingredient names that occur anywhere in display as whole words."""
        return [name for name, regex in self._mention_res.items() if regex.search(display)]


# --------------------------------------------------------------------------- building


@dataclass
class Product:
    code: str
    display: str
    ingredients: tuple[str, ...]
    substances: tuple[str, ...]
    brand: str
    valuesets: set[str] = field(default_factory=set)


def build_products(
    valuesets: Sequence[ValueSet], matcher: IngredientMatcher
) -> tuple[list[Product], list[Product]]:
    """Return (products naming at least one of our ingredients, products left out)."""
    by_code: dict[str, Product] = {}
    for valueset in valuesets:
        for concept in valueset.concepts:
            product = by_code.get(concept.code)
            if product is None:
                parsed = parse_display(concept.display)
                ingredients: list[str] = []
                for substance in parsed.substances:
                    name = matcher.match(substance)
                    if name is not None and name not in ingredients:
                        ingredients.append(name)
                for name in matcher.mentioned(concept.display):
                    if name not in ingredients:
                        warn(
                            f"RxNorm {concept.code} {concept.display!r}: mentions {name} "
                            "outside an ingredient position; not matched"
                        )
                if not parsed.substances:
                    warn(f"RxNorm {concept.code} {concept.display!r}: no substance parsed")
                product = Product(
                    code=concept.code,
                    display=concept.display,
                    ingredients=tuple(ingredients),
                    substances=parsed.substances,
                    brand=parsed.brand,
                )
                by_code[concept.code] = product
            elif product.display != concept.display:
                warn(
                    f"RxNorm {concept.code}: display {concept.display!r} in {valueset.oid} "
                    f"differs from {product.display!r}; keeping the first"
                )
            product.valuesets.add(valueset.oid)
    kept = [p for p in by_code.values() if p.ingredients]
    left_out = [p for p in by_code.values() if not p.ingredients]
    kept.sort(key=lambda p: int(p.code) if p.code.isdigit() else 0)
    left_out.sort(key=lambda p: int(p.code) if p.code.isdigit() else 0)
    return kept, left_out


def brands_by_ingredient(
    products: Iterable[Product], matcher: IngredientMatcher
) -> dict[str, set[str]]:
    """Brands of single-ingredient branded products, keyed by ingredient name.

    A product counts as single-ingredient when every substance its display names is (a salt
    of) the same one of our ingredients; combinations are ignored, even when only one of their
    ingredients is ours.
    """
    brands: dict[str, set[str]] = {}
    for product in products:
        if not product.brand or len(product.ingredients) != 1:
            continue
        if any(matcher.match(s) != product.ingredients[0] for s in product.substances):
            continue
        brands.setdefault(product.ingredients[0], set()).add(product.brand)
    return brands


def check_codes(
    path: Path, row: Row, column: str, system: str, problems: list[Problem]
) -> list[str]:
    """The codes of a cell; a malformed one (or a SNOMED CT id failing its check digit) is a
    problem at the input's file:line:col, worded as the service's loader words it."""
    codes = split_codes(row[1][column])
    for code in codes:
        if (message := code_problem(system, code)) is not None:
            problems.append(problem_at(path, row, column, message))
    return codes


def load_roles(path: Path) -> dict[str, RoleRow]:
    """drug_roles.tsv by lower-case ingredient, read by the service's loader."""
    problems: list[Problem] = []
    roles = read_roles(path, problems)
    if problems or roles is None:
        raise InputError(problems)
    return roles


def build_drug_rows(
    path: Path,
    medications: Sequence[Row],
    brands: dict[str, set[str]],
    roles: dict[str, RoleRow],
    roles_path: Path,
) -> list[list[str]]:
    """One row per ingredient of medications.tsv (at ``path``), plus the drugs
    drug_roles.tsv adds by name (no codes); every row takes its role and role source from
    drug_roles.tsv. Every problem is collected before any is raised."""
    rows: list[list[str]] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for row in medications:
        line, med, _ = row
        ingredient = med["ingredient"]
        if (first := seen.setdefault(ingredient.lower(), line)) != line:
            message = f"'{ingredient.lower()}' repeats line {first}"
            problems.append(problem_at(path, row, "ingredient", message))
            continue
        rxcuis = check_codes(path, row, "rxnorm_in_rxcui", RXNORM_SYSTEM, problems)
        atcs = check_codes(path, row, "atc_code", ATC_SYSTEM, problems)
        role = roles.get(ingredient.lower())
        if role is None:
            message = f"'{ingredient.lower()}' has no row in drug_roles.tsv (its role and source)"
            problems.append(problem_at(path, row, "ingredient", message))
            continue
        rows.append(
            [
                ingredient,
                role.drug_class or med["drug_class"],
                role.subclass or med["subclass"],
                role.role,
                ";".join(rxcuis),
                ";".join(atcs),
                ";".join(sorted(brands.get(ingredient.lower(), set()))),
                med["verified"],
                med["source"],
                role.source,
            ]
        )
    for name, role in roles.items():
        if name in seen:
            continue
        if not role.drug_class:
            message = f"'{name}' is not in medications.tsv: give its drug_class"
            problems.append(Problem(role.where(roles_path, "drug_class"), message))
            continue
        rows.append(
            [
                name,
                role.drug_class,
                role.subclass,
                role.role,
                "",
                "",
                "",
                "name only",
                "drug_roles.tsv",
                role.source,
            ]
        )
    if problems:
        raise InputError(problems)
    rows.sort(key=lambda row: row[0].lower())
    return rows


def parse_icd_titles(notes: str, where: str) -> dict[str, str]:
    """Parse 'ICD-10-CM titles: X=title; Y=title' at the end of a notes cell."""
    start = notes.find(ICD_TITLES_MARKER)
    if start < 0:
        return {}
    titles: dict[str, str] = {}
    for part in ICD_TITLE_SPLIT_RE.split(notes[start + len(ICD_TITLES_MARKER) :]):
        code, sep, title = part.strip().partition("=")
        if not sep or not title.strip():
            warn(f"{where}: cannot read ICD-10-CM title {part.strip()!r}")
            continue
        titles[code.strip()] = title.strip().rstrip(";").strip()
    return titles


def build_condition_rows(path: Path, conditions: Sequence[Row]) -> tuple[list[list[str]], int]:
    """Return (rows, number of concepts skipped because verified is 'no'); a malformed code
    of a concept written out stops the build, located in ``path``."""
    rows: list[list[str]] = []
    problems: list[Problem] = []
    skipped = 0
    categories: dict[tuple[str, str], set[str]] = {}
    for row in conditions:
        source_row = row[1]
        concept = source_row["concept"]
        cond = {**source_row, "category": CATEGORY_OVERRIDES.get(concept, source_row["category"])}
        where = f"conditions.tsv {concept!r}"
        if cond["verified"].lower() == "no":
            skipped += 1
            continue
        snomed_codes = check_codes(path, row, "snomed_ct", SNOMED_SYSTEM, problems)
        icd_codes = check_codes(path, row, "icd10cm", ICD10CM_SYSTEM, problems)
        if len(snomed_codes) > 1:
            warn(f"{where}: several SNOMED codes share one snomed_display")
        titles = parse_icd_titles(cond["notes"], where)
        for code in sorted(set(titles) - set(icd_codes)):
            warn(f"{where}: notes give a title for {code}, which is not in the icd10cm cell")
        entries = [
            (SNOMED_SYSTEM, code, cond["snomed_display"] or concept) for code in snomed_codes
        ]
        entries += [(ICD10CM_SYSTEM, code, titles.get(code, concept)) for code in icd_codes]
        for system, code, display in entries:
            categories.setdefault((system, code), set()).add(cond["category"])
            rows.append(
                [cond["category"], concept, system, code, display, cond["verified"], cond["source"]]
            )
    for (system, code), cats in sorted(categories.items()):
        if len(cats) > 1:
            warn(f"{system}|{code} appears under several categories: {', '.join(sorted(cats))}")
    if problems:
        raise InputError(problems)
    rows.sort(key=lambda row: (row[0], row[1].lower(), row[2], row[3]))
    return rows, skipped


# --------------------------------------------------------------------------- writing


def write_tsv(
    path: Path, comments: Sequence[str], header: Sequence[str], rows: Iterable[Sequence[str]]
) -> int:
    lines = [f"# {comment}".rstrip() for comment in comments]
    lines.append("\t".join(header))
    count = 0
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"{path.name}: row has {len(row)} cells, header has {len(header)}")
        for cell in row:
            if any(char in cell for char in "\t\r\n"):
                raise ValueError(f"{path.name}: cell contains a tab or line break: {cell!r}")
        lines.append("\t".join(row))
        count += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")
    return count


def common_comments(description: Sequence[str], inputs: Sequence[str]) -> list[str]:
    return [
        *description,
        f"Generated by {SCRIPT_NAME} from:",
        *(f"  {name if name.startswith('rules/') else f'{INPUT_LABEL}/{name}'}" for name in inputs),
        f"Do not edit by hand: re-running {SCRIPT_NAME} regenerates it. Change a drug's role in",
        "rules/valuesets/drug_roles.tsv and codes in terminology/ (with their sources).",
        "Every code must be real and traceable to its source; never add an invented code.",
    ]


def write_all(
    out: Path,
    vsac_names: Sequence[str],
    drug_rows: Sequence[Sequence[str]],
    product_rows: Sequence[Sequence[str]],
    condition_rows: Sequence[Sequence[str]],
) -> tuple[int, int, int]:
    """The three built files written into ``out``; their row counts."""
    n_drugs = write_tsv(
        out / "drugs.tsv",
        common_comments(
            [
                "drugs.tsv: one row per ingredient of medications.tsv (and per drug that",
                "drug_roles.tsv adds by name, without codes), with its drug class, its role in",
                "restless syndromes and the source of that role (from drug_roles.tsv), its RxNorm",
                "ingredient RXCUIs and ATC codes (';'-separated, first is primary) and the brands",
                "of its single-ingredient SBDs found in the VSAC expansions.",
            ],
            ["medications.tsv", *vsac_names, "rules/valuesets/drug_roles.tsv"],
        ),
        DRUGS_HEADER,
        drug_rows,
    )
    n_products = write_tsv(
        out / "drug_products.tsv",
        common_comments(
            [
                "drug_products.tsv: one row per product-level RxNorm code (SCD/SBD/pack) in the",
                "VSAC expansions that names at least one ingredient of drugs.tsv; ingredients",
                "lists only our ingredients, valuesets the VSAC OIDs the code appears in.",
            ],
            [*vsac_names, "medications.tsv"],
        ),
        PRODUCTS_HEADER,
        product_rows,
    )
    n_conditions = write_tsv(
        out / "conditions.tsv",
        common_comments(
            [
                "conditions.tsv: one row per (concept, code) of conditions.tsv for SNOMED CT and",
                "ICD-10-CM; concepts verified 'no' are left out. ICD-10-CM display is the title",
                "given in the notes, else the concept name.",
            ],
            ["conditions.tsv"],
        ),
        CONDITIONS_HEADER,
        condition_rows,
    )
    return n_drugs, n_products, n_conditions


def check_built(staging: Path, out: Path, roles_path: Path) -> None:
    """Load the built files with the service's loader, beside the authors' drug_roles.tsv
    and brands.tsv: a build that the service would refuse is not written."""
    shutil.copyfile(roles_path, staging / "drug_roles.tsv")
    if (out / "brands.tsv").is_file():
        shutil.copyfile(out / "brands.tsv", staging / "brands.tsv")
    _, problems = load_valuesets(staging)
    roles_copy = str(staging / "drug_roles.tsv")
    located = [
        str(p).replace(roles_copy, str(roles_path)).replace(str(staging), str(out))
        for p in problems
    ]
    if located:
        raise InputError(located)


def run(terminology: Path, out: Path, roles_path: Path | None = None) -> int:
    medications = read_tsv(terminology / "medications.tsv", MEDICATION_COLUMNS)
    roles_path = roles_path or out / "drug_roles.tsv"
    roles = load_roles(roles_path)
    conditions = read_tsv(terminology / "conditions.tsv", CONDITION_COLUMNS)
    vsac_paths = sorted((terminology / "vsac").glob("*.json"))
    if not vsac_paths:
        raise InputError([f"no VSAC expansions in {terminology / 'vsac'}"])
    valuesets = [read_valueset(path) for path in vsac_paths]
    vsac_names = [f"vsac/{path.name}" for path in vsac_paths]

    matcher = IngredientMatcher(med["ingredient"] for _, med, _ in medications)
    products, left_out = build_products(valuesets, matcher)
    for product in left_out:
        substances = ", ".join(product.substances) or "nothing parsed"
        print(
            f"left out: RxNorm {product.code} {product.display!r} "
            f"(names no ingredient of medications.tsv: {substances}; "
            f"in {';'.join(sorted(product.valuesets))})",
            file=sys.stderr,
        )

    brands = brands_by_ingredient(products, matcher)
    drug_rows = build_drug_rows(
        terminology / "medications.tsv", medications, brands, roles, roles_path
    )
    product_rows = [
        [p.code, p.display, ";".join(p.ingredients), p.brand, ";".join(sorted(p.valuesets))]
        for p in products
    ]
    condition_rows, skipped_concepts = build_condition_rows(
        terminology / "conditions.tsv", conditions
    )
    with tempfile.TemporaryDirectory(prefix="restless-valuesets-") as temporary:
        staging = Path(temporary)
        counts = write_all(staging, vsac_names, drug_rows, product_rows, condition_rows)
        check_built(staging, out, roles_path)
        for name in BUILT:
            shutil.copyfile(staging / name, out / name)
    n_drugs, n_products, n_conditions = counts

    distinct_codes = len(products) + len(left_out)
    print(f"drugs.tsv: {n_drugs} rows written")
    print(
        f"drug_products.tsv: {n_products} rows written, {len(left_out)} left out "
        f"(of {distinct_codes} distinct RxNorm codes in {len(valuesets)} expansions)"
    )
    print(
        f"conditions.tsv: {n_conditions} rows written, "
        f"{skipped_concepts} concepts left out (verified 'no')"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--terminology",
        type=Path,
        default=DEFAULT_TERMINOLOGY,
        help="directory with medications.tsv, conditions.tsv and vsac/*.json "
        "(default: terminology/ in the repository)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output directory (default: rules/valuesets under the repository root)",
    )
    args = parser.parse_args(argv)
    try:
        return run(args.terminology, args.out)
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
