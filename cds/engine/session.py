"""One request = one engine session: facts in, rule firings and card outcomes out.

``RuleEngine`` pairs compiled rules with their registered durable-rules ruleset. Each
firing is recorded (for explanations and tests); ``derive`` rules return the new fact to
the runtime, which asserts it into the same session, so later rules chain on it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cds.engine.compiler import CompiledRule, CompiledRules
from cds.engine.expressions import Const, Value
from cds.engine.runtime import EngineRuleset, register_ruleset

__all__ = ["EngineResult", "Firing", "Outcome", "RuleEngine"]

_ENGINE_KEYS = frozenset({"sid", "id"})
_names = itertools.count(1)


@dataclass(frozen=True)
class Outcome:
    """A card rule fired: which template, with which values."""

    rule_id: str
    template: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Firing:
    """One rule firing, in order, with the facts it bound by alias."""

    rule_id: str
    stage: int
    bound: Mapping[str, Mapping[str, Any]]
    derived: Mapping[str, Any] | None = None


@dataclass
class EngineResult:
    outcomes: list[Outcome] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)
    fact_count: int = 0

    @property
    def derived_facts(self) -> list[Mapping[str, Any]]:
        return [f.derived for f in self.firings if f.derived is not None]


class RuleEngine:
    """Compiled rules registered with durable-rules under a fresh, unique name."""

    def __init__(self, compiled: CompiledRules, label: str = "rules") -> None:
        self.compiled = compiled
        self.name = f"{label}_{next(_names)}"
        self._ruleset: EngineRuleset = register_ruleset(
            self.name, compiled.definition, compiled.stages
        )

    @property
    def in_flight(self) -> int:
        return self._ruleset.in_flight

    def hold(self) -> bool:
        """Keep these rules alive for one request (False once they are retired)."""
        return self._ruleset.hold()

    def release(self) -> None:
        self._ruleset.release()

    def evaluate(self, facts: Sequence[Mapping[str, Any]]) -> EngineResult:
        """Run the rules over one request's facts (each a flat dict with a ``fact`` key)."""
        result = EngineResult()
        rules = self.compiled.rules

        def on_action(rule_name: str, bindings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
            rule = rules[rule_name]
            bound = {
                alias: _plain(fact) for alias, fact in bindings.items() if alias in _aliases(rule)
            }
            values = _resolve(rule.values, bound)
            if rule.derive_fact is not None:
                derived = {"fact": rule.derive_fact, **values}
                result.firings.append(Firing(rule.id, rule.stage, bound, derived))
                return [derived]
            assert rule.card_template is not None
            result.firings.append(Firing(rule.id, rule.stage, bound))
            result.outcomes.append(Outcome(rule.id, rule.card_template, values))
            return []

        clean = [{k: v for k, v in fact.items() if v is not None} for fact in facts]
        result.fact_count = self._ruleset.run(clean, on_action)
        return result

    def close(self) -> None:
        """Retire the ruleset; durable-rules frees it when the last session ends."""
        self._ruleset.retire()


def _aliases(rule: CompiledRule) -> set[str]:
    return {c.alias for c in rule.conditions if c.alias}


def _plain(fact: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fact.items() if k not in _ENGINE_KEYS}


def _resolve(values: Mapping[str, Value], bound: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Const):
            resolved[key] = value.value
            continue
        raw = bound[value.alias].get(value.attr)
        if raw is not None and value.offset:
            raw = raw + value.offset
        if raw is not None and value.minus is not None:
            other = bound[value.minus[0]].get(value.minus[1])
            raw = raw - other if other is not None else None
        if raw is not None:
            resolved[key] = raw
    return resolved
