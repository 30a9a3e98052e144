"""Every request in fhir_examples/ gets exactly the cards its .expected.json names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds.hooks import SERVICES, CardsResponse, evaluate, parse_request
from cds.rulebase import RuleBase
from tests.conftest import EXAMPLES

EXPECTATIONS = sorted(EXAMPLES.glob("*.expected.json"))


def _request_for(expected: Path) -> Path:
    return expected.with_name(expected.name.replace(".expected.json", ".json"))


def test_every_example_has_an_expectation() -> None:
    requests = {p for p in EXAMPLES.glob("*.json") if not p.name.endswith(".expected.json")}
    assert requests == {_request_for(e) for e in EXPECTATIONS}
    assert len(requests) >= 3


@pytest.mark.parametrize("expected_path", EXPECTATIONS, ids=lambda p: p.name.split(".")[0])
def test_example_gets_its_expected_cards(expected_path: Path, rulebase: RuleBase) -> None:
    expected: dict[str, Any] = json.loads(expected_path.read_text(encoding="utf-8"))
    request = parse_request(_request_for(expected_path).read_bytes())
    result = evaluate(
        request,
        SERVICES[expected["service"]],
        rulebase,
        source_label="restless-cds",
        override_system="urn:restless-cds:override-reason",
    )
    cards = CardsResponse.model_validate({"cards": result.cards}).model_dump(exclude_none=True)
    got = cards["cards"]
    assert [c["extension"]["restless-cds-rule"] for c in got] == [
        c["rule"] for c in expected["cards"]
    ]
    for card, want in zip(got, expected["cards"], strict=True):
        assert card["indicator"] == want["indicator"]
        for word in want.get("summary_includes", []):
            assert word in card["summary"]
        labels = [s["label"] for s in card.get("suggestions", [])]
        assert labels == want.get("suggestion_labels", [])
    assert result.extraction.issues == []
