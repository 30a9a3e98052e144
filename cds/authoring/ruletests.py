"""``restless-cds rules test``: the rule authors' own test cases and the example requests.

Two kinds of case, each reported as passed or with a readable difference:

- ``rules/tests/*.yaml``: cases beside the rules. A case gives either ``facts`` (flat
  facts as the extractors would make them) or ``request`` (a CDS Hooks request file,
  relative to the case file), and ``expect``: ``cards`` (the card rule ids, in order),
  ``fired`` (rules that must fire) and ``not_fired`` (rules that must not).
- ``fhir_examples/NAME.json`` with ``NAME.expected.json``: the cards a request must get
  (rule, indicator, words in the summary and detail, suggestion labels).

A case cannot pass for the wrong reason: its facts are checked against the fact schema
(an unknown fact type or a misspelt attribute is a ``file:line:col`` problem, not a
silently absent fact), the rule ids it names must exist, and after the cases a
"rule coverage" result lists every rule that no case fires, or that fires in every case.
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
from cds.facts import FACT_SCHEMA
from cds.hooks import SERVICES, CardsResponse, evaluate, parse_request
from cds.rulebase import RuleBase

__all__ = ["COVERAGE", "CaseResult", "run_examples", "run_rule_cases"]

TESTS_DIR = "tests"
COVERAGE = "rule coverage"
_MERGE_KEY = "<<"


@dataclass
class CaseResult:
    name: str
    where: str
    problems: list[str] = field(default_factory=list)
    fired: set[str] | None = None
    """The rules that fired, when the case ran."""

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
    """Every case in ``<rules>/tests/*.yaml``, then the rule coverage of those cases."""
    runs: list[set[str]] = []
    for path in sorted((rulebase.directory / TESTS_DIR).glob("*.yaml")):
        try:
            text = path.read_text(encoding="utf-8")
            spec = _CaseFile.model_validate(yaml.safe_load(text))
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except (yaml.YAMLError, ValueError) as exc:
            yield CaseResult(path.name, str(path), [f"invalid case file: {exc}"])
            continue
        for i, case in enumerate(spec.cases):
            result = _run_case(case, _CaseSite(path, root, i), rulebase, label, override_system)
            if result.fired is not None:
                runs.append(result.fired)
            yield result
    yield _coverage(rulebase, runs)


@dataclass(frozen=True)
class _CaseSite:
    """Where a case is written, to point a problem at its line and column."""

    path: Path
    root: yaml.Node | None
    index: int

    def where(self, *loc: str | int) -> str:
        node = _walk(self.root, ("cases", self.index, *loc))
        if node is None:
            return str(self.path)
        return f"{self.path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _walk(node: yaml.Node | None, loc: tuple[str | int, ...]) -> yaml.Node | None:
    """The node of the deepest step along ``loc`` that exists (a mapping entry's key),
    through aliases and ``<<`` merges; bounded by ``loc`` and the file's merge chains."""
    found = node
    for step in loc:
        entry = _child(node, step)
        if entry is None:
            return found
        found, node = entry
    return found


def _child(node: yaml.Node | None, step: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(where to point, what to descend into) for one step, or ``None``."""
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
        return (node.value[step], node.value[step]) if step < len(node.value) else None
    if not isinstance(node, yaml.MappingNode):
        return None
    merged: list[yaml.Node] = []
    for key, value in node.value:
        if key.value == step:
            return key, value
        if key.value == _MERGE_KEY:
            merged.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
    for source in merged:
        if (entry := _child(source, step)) is not None:
            return entry
    return None


def _fact_problems(facts: list[dict[str, Any]], site: _CaseSite) -> list[str]:
    """Facts the extractors could not make: unknown type, unknown attribute, wrong type."""
    problems = []
    for j, fact in enumerate(facts):
        kind = fact.get("fact")
        attrs = FACT_SCHEMA.get(kind) if isinstance(kind, str) else None
        if attrs is None:
            known = ", ".join(sorted(FACT_SCHEMA))
            problems.append(
                f"{site.where('facts', j, 'fact')}: unknown fact type {kind!r} ({known})"
            )
            continue
        for name, value in fact.items():
            if name == "fact":
                continue
            where = site.where("facts", j, name)
            if name not in attrs:
                problems.append(f"{where}: '{kind}' has no attribute '{name}'")
            elif not _fits(attrs[name], value):
                want = attrs[name].__name__
                problems.append(f"{where}: '{kind}.{name}' is {want}, not {value!r}")
    return problems


def _fits(kind: type, value: Any) -> bool:
    if kind is object:
        return True
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    if kind in (int, float):
        return isinstance(value, int | float) and (kind is float or isinstance(value, int))
    return isinstance(value, kind)


def _unknown_rules(expect: _Expect, rulebase: RuleBase, site: _CaseSite) -> list[str]:
    rules = rulebase.compiled.rules
    problems = []
    for key in ("fired", "not_fired", "cards"):
        for k, rule_id in enumerate(getattr(expect, key) or []):
            rule = rules.get(rule_id)
            where = site.where("expect", key, k)
            if rule is None:
                problems.append(f"{where}: no rule '{rule_id}'")
            elif key == "cards" and rule.card_template is None:
                problems.append(f"{where}: rule '{rule_id}' derives a fact, it makes no card")
    return problems


def _run_case(
    case: _Case, site: _CaseSite, rulebase: RuleBase, label: str, override_system: str
) -> CaseResult:
    path = site.path
    result = CaseResult(case.name, str(path))
    result.problems += _unknown_rules(case.expect, rulebase, site)
    if case.facts is not None:
        result.problems += _fact_problems(case.facts, site)
    if result.problems:
        return result
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
    fired = result.fired = {f.rule_id for f in engine.firings}
    expect = case.expect
    if expect.cards is not None and _unique(cards) != expect.cards:
        result.problems.append("cards differ:\n" + _diff(expect.cards, _unique(cards)))
    result.problems += [f"rule {r} did not fire" for r in expect.fired if r not in fired]
    result.problems += [f"rule {r} fired but must not" for r in expect.not_fired if r in fired]
    return result


def _coverage(rulebase: RuleBase, runs: list[set[str]]) -> CaseResult:
    """The promise of ``rules/tests/README.md``: every rule fires in some case and stays
    silent in another."""
    result = CaseResult(COVERAGE, str(rulebase.directory / TESTS_DIR))
    for rule_id in sorted(rulebase.compiled.rules):
        firing = sum(rule_id in fired for fired in runs)
        if firing == 0:
            result.problems.append(f"rule {rule_id}: no case where it fires")
        elif firing == len(runs):
            result.problems.append(f"rule {rule_id}: no case where it does not fire")
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
        # another patient's resources are skipped by design (the mixed-patient example)
        unexpected = [
            f"{i.where}: {i.message}"
            for i in evaluation.extraction.issues
            if "another patient" not in i.message
        ]
        if unexpected and not expected.get("input_issues"):
            result.problems.append("unexpected skipped input: " + "; ".join(unexpected))
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
