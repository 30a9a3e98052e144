"""Issue 10: a Spanish or Chinese description gives the same card as its English version.

Each pair is the same patient and orders with the complaint written in another language
(fhir_examples/); the cards must agree in everything but their uuids.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds.hooks import SERVICES, evaluate, parse_request
from cds.rulebase import RuleBase
from tests.conftest import EXAMPLES

ENGLISH = "restless-back-amisulpride"
TRANSLATIONS = [
    "restless-back-spanish-amisulpride",
    "restless-back-chinese-amisulpride",
    "restless-back-chinese-undeclared-amisulpride",  # language detected, not declared
]


def _cards(name: str, rulebase: RuleBase) -> list[dict[str, Any]]:
    request = parse_request((EXAMPLES / f"{name}.json").read_bytes())
    result = evaluate(
        request,
        SERVICES["restless-order-select"],
        rulebase,
        source_label="restless-cds",
        override_system="urn:restless-cds:override-reason",
    )
    cards = []
    for card in result.cards:
        data = card.model_dump(exclude_none=True) if hasattr(card, "model_dump") else dict(card)
        data.pop("uuid", None)
        for suggestion in data.get("suggestions", []):
            suggestion.pop("uuid", None)
        cards.append(
            {
                "summary": data["summary"],
                "indicator": data["indicator"],
                "rule": data["extension"]["restless-cds-rule"],
                "suggestions": [s["label"] for s in data.get("suggestions", [])],
            }
        )
    return cards


@pytest.mark.parametrize("translated", TRANSLATIONS)
def test_a_translated_complaint_gets_the_english_card(translated: str, rulebase: RuleBase) -> None:
    english = _cards(ENGLISH, rulebase)
    assert english  # the pair is only a proof when the English version raises a card
    assert _cards(translated, rulebase) == english
