"""``restless-cds rules test``: the rule authors' own test cases and the example requests.

Two kinds of case, each reported as passed or with a readable difference:

- ``rules/tests/*.yaml``: cases beside the rules. A case gives either ``facts`` (flat
  facts as the extractors would make them) or ``request`` (a CDS Hooks request file,
  relative to the case file), and ``expect``: ``cards`` (the card rule ids, in order),
  ``fired`` (rules that must fire) and ``not_fired`` (rules that must not).
- ``fhir_examples/NAME.json`` with ``NAME.expected.json``: the cards a request must get
  (rule, indicator, words in the summary and detail, suggestion labels).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cds.authoring.explain import service_for
from cds.cards import RULE_EXTENSION
from cds.errors import CdsError
from cds.hooks import SERVICES, CardsResponse, evaluate, parse_request
from cds.rulebase import RuleBase

__all__ = ["CaseResult", "run_examples", "run_rule_cases"]

TESTS_DIR = "tests"


@dataclass
class CaseResult:
    name: str
    where: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


class _Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cards: list[str] | None = None
    fired: list[str] = Field(default_factory=list)
    not_fired: list[str] = Field(default_factory=list)


class _Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=3)
    facts: list[dict[str, Any]] | None = None
    request: str | None = None
    service: str | None = None
    expect: _Expect

    @model_validator(mode="after")
    def _one_input(self) -> _Case:
        if (self.facts is None) == (self.request is None):
            raise ValueError("a case gives exactly one of 'facts' or 'request'")
        return self


class _CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    library: list[dict[str, Any]] = Field(
        default_factory=list, description="facts named with YAML anchors for the cases"
    )
    cases: list[_Case] = Field(min_length=1)


def _diff(expected: Any, got: Any) -> str:
    want = json.dumps(expected, indent=2, sort_keys=True).splitlines()
    have = json.dumps(got, indent=2, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(want, have, "expected", "got", lineterm="", n=2))


def run_rule_cases(rulebase: RuleBase, label: str, override_system: str) -> Iterator[CaseResult]:
    """Every case in ``<rules>/tests/*.yaml``."""
    for path in sorted((rulebase.directory / TESTS_DIR).glob("*.yaml")):
        try:
            spec = _CaseFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValueError) as exc:
            yield CaseResult(path.name, str(path), [f"invalid case file: {exc}"])
            continue
        for case in spec.cases:
            yield _run_case(case, path, rulebase, label, override_system)


def _run_case(
    case: _Case, path: Path, rulebase: RuleBase, label: str, override_system: str
) -> CaseResult:
    result = CaseResult(case.name, str(path))
    try:
        if case.facts is not None:
            engine = rulebase.engine.evaluate(case.facts)
            cards = [o.rule_id for o in engine.outcomes]
        else:
            assert case.request is not None
            body = (path.parent / case.request).read_bytes()
            request = parse_request(body)
            service = service_for(request.hook, case.service)
            if service is None:
                raise CdsError(f"no service for hook '{request.hook}'")
            evaluation = evaluate(
                request, service, rulebase, source_label=label, override_system=override_system
            )
            engine = evaluation.engine
            cards = [c["extension"][RULE_EXTENSION] for c in evaluation.cards]
    except (CdsError, OSError) as exc:
        result.problems.append(f"could not run: {exc}")
        return result
    fired = {f.rule_id for f in engine.firings}
    expect = case.expect
    if expect.cards is not None and _unique(cards) != expect.cards:
        result.problems.append("cards differ:\n" + _diff(expect.cards, _unique(cards)))
    result.problems += [f"rule {r} did not fire" for r in expect.fired if r not in fired]
    result.problems += [f"rule {r} fired but must not" for r in expect.not_fired if r in fired]
    return result


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def run_examples(
    examples_dir: Path, rulebase: RuleBase, label: str, override_system: str
) -> Iterator[CaseResult]:
    """Every ``NAME.json`` in ``examples_dir`` against its ``NAME.expected.json``."""
    for expected_path in sorted(examples_dir.glob("*.expected.json")):
        name = expected_path.name.removesuffix(".expected.json")
        result = CaseResult(name, str(expected_path))
        expected = json.loads(expected_path.read_text(encoding="utf-8"))
        try:
            request = parse_request((examples_dir / f"{name}.json").read_bytes())
            evaluation = evaluate(
                request,
                SERVICES[expected["service"]],
                rulebase,
                source_label=label,
                override_system=override_system,
            )
            got = CardsResponse.model_validate({"cards": evaluation.cards})
        except (CdsError, OSError, KeyError, ValueError) as exc:
            result.problems.append(f"could not run: {exc}")
            yield result
            continue
        cards = got.model_dump(exclude_none=True)["cards"]
        summary = [
            _summarise(card, want) for card, want in zip(cards, expected["cards"], strict=False)
        ]
        want_summary = [_expected_view(w) for w in expected["cards"]]
        got_summary = summary + [_summarise(c, {}) for c in cards[len(expected["cards"]) :]]
        if got_summary != want_summary:
            result.problems.append("cards differ:\n" + _diff(want_summary, got_summary))
        if evaluation.extraction.issues and not expected.get("input_issues"):
            issues = [f"{i.where}: {i.message}" for i in evaluation.extraction.issues]
            result.problems.append("unexpected skipped input: " + "; ".join(issues))
        yield result


def _expected_view(want: Mapping[str, Any]) -> dict[str, Any]:
    view = {"rule": want["rule"], "indicator": want["indicator"]}
    for key in ("summary_includes", "detail_includes", "suggestion_labels"):
        if want.get(key):
            view[key] = list(want[key])
    return view


def _summarise(card: Mapping[str, Any], want: Mapping[str, Any]) -> dict[str, Any]:
    """The card seen through what the expectation checks (words present or missing)."""
    view: dict[str, Any] = {
        "rule": card["extension"][RULE_EXTENSION],
        "indicator": card["indicator"],
    }
    for key, text in (
        ("summary_includes", card["summary"]),
        ("detail_includes", card.get("detail", "")),
    ):
        words = want.get(key) or []
        if words:
            view[key] = [w if w in text else f"MISSING: {w}" for w in words]
    labels = [s["label"] for s in card.get("suggestions", [])]
    if labels or want.get("suggestion_labels"):
        view["suggestion_labels"] = labels
    return view
