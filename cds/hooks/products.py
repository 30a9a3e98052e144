"""The product of each draft order, as the card renderer needs it to count tablets.

Built from the draft's medication facts (strength or concentration from the product's
name, the ingredient and its RxNorm code from the value sets) and handed to the cards
layer as plain data, so ``cds.cards`` reads neither FHIR nor value sets. A draft naming
several ingredients has no single strength: it gets no entry.
"""

from __future__ import annotations

from collections.abc import Iterable

from cds.cards import DraftProduct
from cds.facts import Fact, MedicationFact, Terminology

__all__ = ["draft_products"]


def draft_products(facts: Iterable[Fact], terminology: Terminology) -> dict[str, DraftProduct]:
    """``MedicationRequest/id`` -> its product, for each single-ingredient draft."""
    by_source: dict[str, list[MedicationFact]] = {}
    for fact in facts:
        if isinstance(fact, MedicationFact) and fact.draft:
            by_source.setdefault(fact.source, []).append(fact)
    return {
        source: DraftProduct(
            ingredient=fact.ingredient,
            display=fact.display,
            strength_mg=fact.unit_strength_mg,
            mg_per_ml=fact.unit_concentration_mg_per_ml,
            ingredient_code=terminology.ingredient_code(fact.ingredient),
        )
        for source, (fact, *others) in by_source.items()
        if not others
    }
