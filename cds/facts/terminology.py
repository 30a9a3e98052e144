"""Value sets from ``rules/valuesets/*.tsv``: recognise drugs and conditions by code or name.

A drug is recognised, most specific first, by RxNorm ingredient code, RxNorm product
code (resolved to its ingredients), ATC code, then by ingredient or brand name
(``brands.tsv``: RxTerms and FDA Orange Book names) as a whole word in a display or free
text (so "amisulpride hydrochloride 200 mg" counts, and
"clozapine" never matches "olanzapine"). Every code comes from shared/terminology.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cds.errors import RulesError
from cds.facts.valuesets import ATC, ICD10CM, ROLES, RXNORM, SNOMED, ValueSetTables, load_valuesets

__all__ = [
    "ATC",
    "ICD10CM",
    "ROLES",
    "RXNORM",
    "SNOMED",
    "ConditionConcept",
    "Drug",
    "DrugMatch",
    "Terminology",
]

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Drug:
    ingredient: str
    drug_class: str
    subclass: str
    role: str

    @property
    def provoking(self) -> bool:
        return self.role == "provoking"


@dataclass(frozen=True)
class DrugMatch:
    drug: Drug
    recognised_by: str


@dataclass(frozen=True)
class ConditionConcept:
    category: str
    concept: str
    display: str


class Terminology:
    """Lookup tables built once per rules directory, shared read-only by requests."""

    def __init__(
        self,
        drugs: dict[str, Drug],
        by_code: dict[tuple[str, str], list[tuple[str, str]]],
        names: dict[str, str],
        conditions: dict[tuple[str, str], ConditionConcept],
        product_displays: dict[str, str] | None = None,
    ) -> None:
        self.drugs = drugs
        self._by_code = by_code
        self.conditions = conditions
        self._product_displays = product_displays or {}
        # each drug's first RxNorm ingredient code, in drugs.tsv order (its primary one)
        self._ingredient_codes: dict[str, str] = {}
        for (system, code), found in by_code.items():
            for name, how in found:
                if system == RXNORM and how == "rxnorm-ingredient":
                    self._ingredient_codes.setdefault(name, code)
        # names as word tuples, indexed by first word: a text is split into words once and
        # each word looked up, ~10x cheaper than one big case-insensitive alternation
        self._by_first_word: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for name, ingredient in sorted(names.items(), key=lambda n: -len(n[0])):
            words = tuple(_WORD.findall(name))
            if words:
                self._by_first_word.setdefault(words[0], []).append((words, ingredient))

    @classmethod
    def load(cls, directory: Path) -> Terminology:
        """The value sets of ``directory``; ``RulesError`` (file:line:col problems, the same
        ones ``rules check`` reports) if any table is invalid."""
        tables, problems = load_valuesets(directory)
        if problems:
            raise RulesError(problems)
        return cls.from_tables(tables)

    @classmethod
    def from_tables(cls, tables: ValueSetTables) -> Terminology:
        drugs: dict[str, Drug] = {}
        by_code: dict[tuple[str, str], list[tuple[str, str]]] = {}
        names: dict[str, str] = {}
        for row in tables.drugs:
            name = row.ingredient
            drugs[name] = Drug(name, row.drug_class, row.subclass, row.role)
            names[name] = name
            for brand in row.brands:
                names[brand.lower()] = name
            for code in row.rxnorm:
                by_code.setdefault((RXNORM, code), []).append((name, "rxnorm-ingredient"))
            for code in row.atc:
                by_code.setdefault((ATC, code), []).append((name, "atc"))
        for brand_row in tables.brands:
            names.setdefault(brand_row.brand.lower(), brand_row.ingredient)
        product_displays: dict[str, str] = {}
        for product in tables.products:
            product_displays[product.code] = product.display
            for name in product.ingredients:
                by_code.setdefault((RXNORM, product.code), []).append((name, "rxnorm-product"))
        conditions = {
            (c.system, c.code): ConditionConcept(c.category, c.concept, c.display)
            for c in tables.conditions
        }
        return cls(drugs, by_code, names, conditions, product_displays)

    def match_codes(self, codings: Iterable[tuple[str | None, str | None]]) -> list[DrugMatch]:
        """Drugs named by (system, code) pairs, one match per ingredient."""
        found: dict[str, DrugMatch] = {}
        for system, code in codings:
            for name, how in self._by_code.get((system or "", code or ""), []):
                found.setdefault(name, DrugMatch(self.drugs[name], how))
        return list(found.values())

    def match_text(self, texts: Iterable[str | None]) -> list[DrugMatch]:
        """Drugs whose ingredient or brand name appears as a whole word in any text."""
        found: dict[str, DrugMatch] = {}
        for text in texts:
            if not text:
                continue
            words = _WORD.findall(text.lower())
            for i, word in enumerate(words):
                for name_words, ingredient in self._by_first_word.get(word, ()):
                    if tuple(words[i : i + len(name_words)]) == name_words:
                        found.setdefault(ingredient, DrugMatch(self.drugs[ingredient], "text"))
                        break
        return list(found.values())

    def product_displays(self, codings: Iterable[tuple[str | None, str | None]]) -> list[str]:
        """The value sets' names of RxNorm product codes ("quetiapine 25 MG Oral
        Tablet"): a strength for an order that sends the code without its display."""
        return [
            self._product_displays[code]
            for system, code in codings
            if system == RXNORM and code in self._product_displays
        ]

    def ingredient_code(self, ingredient: str) -> str | None:
        """The primary RxNorm ingredient code of a drug of ``drugs.tsv`` (its first one)."""
        return self._ingredient_codes.get(ingredient)

    def condition(self, system: str | None, code: str | None) -> ConditionConcept | None:
        return self.conditions.get((system or "", code or ""))
