"""Every request in fhir_examples/ gets exactly the cards its .expected.json names.

An expectation says what the clinical story requires, not what the service happens to
return: ``rule`` and ``indicator`` of each card in order, words its summary (and, if
given, its detail) must contain, and the labels of its suggestions. The examples also
cover the hooks and the rules as a set: all three hooks, positives and negatives, and
every card rule of the bundled rules fired by at least one example.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from cds.hooks import SERVICES, CardsResponse, Evaluation, evaluate, parse_request
from cds.rulebase import RuleBase
from cds.settings import bundled_rules_dir
from tests.conftest import EXAMPLES

EXPECTATIONS = sorted(EXAMPLES.glob("*.expected.json"))
EXPECTED_KEYS = {"description", "service", "cards"}
CARD_KEYS = {"rule", "indicator", "summary_includes", "suggestion_labels", "detail_includes"}
MIN_POSITIVE = 5
MIN_NEGATIVE = 5

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
CONDITION_SYSTEMS = ("http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm")


def _request_for(expected: Path) -> Path:
    return expected.with_name(expected.name.replace(".expected.json", ".json"))


def _name(path: Path) -> str:
    return path.name.split(".")[0]


def _expected(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _request_json(expected: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_request_for(expected).read_text(encoding="utf-8"))
    return data


def _evaluate(expected_path: Path, rulebase: RuleBase) -> Evaluation:
    expected = _expected(expected_path)
    request = parse_request(_request_for(expected_path).read_bytes())
    return evaluate(
        request,
        SERVICES[expected["service"]],
        rulebase,
        source_label="restless-cds",
        override_system="urn:restless-cds:override-reason",
    )


def _cards(result: Evaluation) -> list[dict[str, Any]]:
    """The cards as they go on the wire: validated by the CDS Hooks card model."""
    response = CardsResponse.model_validate({"cards": result.cards})
    cards: list[dict[str, Any]] = response.model_dump(exclude_none=True)["cards"]
    return cards


def test_every_example_has_an_expectation() -> None:
    requests = {p for p in EXAMPLES.glob("*.json") if not p.name.endswith(".expected.json")}
    assert requests == {_request_for(e) for e in EXPECTATIONS}
    assert len(requests) >= 16


@pytest.mark.parametrize("expected_path", EXPECTATIONS, ids=_name)
def test_expectation_is_well_formed(expected_path: Path) -> None:
    """The expected file uses only the known keys, names a service for the request's
    hook, and tells the clinical story."""
    expected = _expected(expected_path)
    assert set(expected) == EXPECTED_KEYS
    assert len(expected["description"]) >= 40
    assert expected["service"] in SERVICES
    assert SERVICES[expected["service"]].hook == _request_json(expected_path)["hook"]
    for card in expected["cards"]:
        assert {"rule", "indicator"} <= set(card) <= CARD_KEYS
        assert card["indicator"] in ("info", "warning", "critical")


@pytest.mark.parametrize("expected_path", EXPECTATIONS, ids=_name)
def test_example_gets_its_expected_cards(expected_path: Path, rulebase: RuleBase) -> None:
    expected = _expected(expected_path)
    result = _evaluate(expected_path, rulebase)
    got = _cards(result)
    assert [c["extension"]["restless-cds-rule"] for c in got] == [
        c["rule"] for c in expected["cards"]
    ]
    for card, want in zip(got, expected["cards"], strict=True):
        assert card["indicator"] == want["indicator"]
        for word in want.get("summary_includes", []):
            assert word in card["summary"]
        for word in want.get("detail_includes", []):
            assert word in card.get("detail", "")
        labels = [s["label"] for s in card.get("suggestions", [])]
        assert labels == want.get("suggestion_labels", [])
    # the only input skipped is another patient's, as the mixed-patient example has
    assert [i for i in result.extraction.issues if "another patient" not in i.message] == []


@pytest.mark.parametrize("expected_path", EXPECTATIONS, ids=_name)
def test_example_cards_are_valid_cds_hooks_cards(expected_path: Path, rulebase: RuleBase) -> None:
    """Whatever the cards are, each one passes the CDS Hooks 2.0 card model, and every
    suggestion updates a draft order of this request (never another resource)."""
    result = _evaluate(expected_path, rulebase)
    cards = _cards(result)
    assert cards == result.cards  # the model neither drops nor adds anything
    request = _request_json(expected_path)
    drafts = request["context"].get("draftOrders") or {}
    draft_ids = {e["resource"]["id"] for e in drafts.get("entry", [])}
    for card in cards:
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                assert action["type"] == "update"
                assert action["resource"]["resourceType"] == "MedicationRequest"
                assert action["resource"]["id"] in draft_ids


def test_examples_cover_the_hooks_and_both_outcomes() -> None:
    expectations = [_expected(p) for p in EXPECTATIONS]
    hooks = {SERVICES[e["service"]].hook for e in expectations}
    assert hooks == {"order-select", "order-sign", "patient-view"}
    positive = [e for e in expectations if e["cards"]]
    negative = [e for e in expectations if not e["cards"]]
    assert len(positive) >= MIN_POSITIVE
    assert len(negative) >= MIN_NEGATIVE
    instances = [_request_json(p)["hookInstance"] for p in EXPECTATIONS]
    assert len(set(instances)) == len(instances), "every example has its own hookInstance"


def test_every_card_rule_fires_in_some_example(rulebase: RuleBase) -> None:
    """Each rule that raises a card is produced by at least one example (a firing
    example per rule, as rules/ and STYLE.md ask)."""
    card_rules = {r.id for r in rulebase.compiled.rules.values() if r.card_template is not None}
    assert card_rules
    produced = {
        card["extension"]["restless-cds-rule"]
        for path in EXPECTATIONS
        for card in _evaluate(path, rulebase).cards
    }
    assert sorted(card_rules - produced) == []


# ---- every code in the examples is one of the value sets' codes ----------------------


def _tsv(name: str) -> Iterator[dict[str, str]]:
    path = bundled_rules_dir() / "valuesets" / name
    with path.open(encoding="utf-8", newline="") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        yield from csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)


@cache
def _known_codes() -> dict[tuple[str, str], str]:
    """(system, code) -> display, from drug_products.tsv, drugs.tsv and conditions.tsv."""
    known = {(RXNORM, r["rxnorm_code"]): r["display"] for r in _tsv("drug_products.tsv")}
    known.update({(LOINC, r["loinc"]): r["display"] for r in _tsv("labs.tsv")})
    for row in _tsv("drugs.tsv"):
        for code in filter(None, (c.strip() for c in row["rxnorm_ingredient"].split(";"))):
            known.setdefault((RXNORM, code), row["ingredient"])
    for row in _tsv("conditions.tsv"):
        known[(row["system"], row["code"])] = row["display"]
    return known


def _codings(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if "system" in value and "code" in value:
            yield value
        for item in value.values():
            yield from _codings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _codings(item)


@pytest.mark.parametrize("expected_path", EXPECTATIONS, ids=_name)
def test_example_codes_come_from_the_value_sets(expected_path: Path) -> None:
    """No invented code: every RxNorm, LOINC, SNOMED CT and ICD-10-CM coding in a request is in
    rules/valuesets with the same display."""
    known = _known_codes()
    for coding in _codings(_request_json(expected_path)):
        if coding["system"] not in (RXNORM, LOINC, *CONDITION_SYSTEMS):
            continue
        key = (coding["system"], coding["code"])
        assert key in known, f"{key} is not in rules/valuesets"
        if "display" in coding:
            assert coding["display"] == known[key]
