"""draft_products: each single-ingredient draft's product, as plain data for the cards."""

from __future__ import annotations

import dataclasses

import pytest

from cds.cards import DraftProduct
from cds.facts import MedicationFact, Terminology
from cds.hooks.products import draft_products
from cds.rulebase import RuleBase


@pytest.fixture
def terminology(rulebase: RuleBase) -> Terminology:
    return rulebase.knowledge.terminology


def fact(**changes: object) -> MedicationFact:
    base = MedicationFact(
        ingredient="venlafaxine",
        drug_class="antidepressant",
        subclass="SNRI",
        provoking=True,
        status="draft",
        draft=True,
        current=True,
        recognised_by="rxnorm-product",
        display="venlafaxine 75 MG Oral Tablet",
        source="MedicationRequest/request-123",
        mg_per_day=150.0,
        unit_strength_mg=75.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_tablet_draft_gives_its_strength_and_ingredient_code(terminology: Terminology) -> None:
    assert draft_products([fact()], terminology) == {
        "MedicationRequest/request-123": DraftProduct(
            ingredient="venlafaxine",
            display="venlafaxine 75 MG Oral Tablet",
            strength_mg=75.0,
            mg_per_ml=None,
            ingredient_code="39786",
        )
    }


def test_a_liquid_draft_gives_its_concentration(terminology: Terminology) -> None:
    liquid = fact(
        ingredient="risperidone",
        display="risperidone 1 MG/ML Oral Solution",
        unit_strength_mg=None,
        unit_concentration_mg_per_ml=1.0,
    )
    (product,) = draft_products([liquid], terminology).values()
    assert (product.mg_per_ml, product.strength_mg) == (1.0, None)


def test_chart_orders_and_combination_drafts_give_nothing(terminology: Terminology) -> None:
    chart = fact(draft=False, source="MedicationRequest/chart")
    combination = [
        fact(source="MedicationRequest/combo", unit_strength_mg=None),
        fact(source="MedicationRequest/combo", ingredient="olanzapine", unit_strength_mg=None),
    ]
    assert draft_products([chart, *combination], terminology) == {}
