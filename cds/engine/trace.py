"""Why a rule did not fire: its conditions replayed in Python over a session's facts.

Used by ``restless-cds explain``. The semantics are the compiled rules' (equality,
gt/gte/lt/lte/ne, in, exists, references to earlier matches, ``absent``), evaluated
condition by condition so the first one no binding can satisfy is the answer.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cds.engine.compiler import CompiledRule
from cds.engine.expressions import Const, Ref, parse_value
from cds.engine.schema import Condition

__all__ = ["first_unmet_condition"]

Fact = Mapping[str, Any]
Binding = dict[str, Fact]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "ne": operator.ne,
}
_MAX_BINDINGS = 10_000


def first_unmet_condition(
    rule: CompiledRule, facts: Sequence[Fact], config: Mapping[str, Any]
) -> str | None:
    """A sentence naming the first condition of ``rule`` that no facts satisfy, or
    ``None`` when every condition can be met (the rule would fire)."""
    by_type: dict[str, list[Fact]] = {}
    for fact in facts:
        by_type.setdefault(str(fact.get("fact")), []).append(fact)
    bindings: list[Binding] = [{}]
    for number, cond in enumerate(rule.conditions, 1):
        candidates = by_type.get(cond.fact_type, [])
        if cond.absent:
            bindings = [
                b for b in bindings if not any(_holds(cond, f, b, config) for f in candidates)
            ]
            if not bindings:
                return f"condition {number} ({_describe(cond)}): such a fact exists"
            continue
        assert cond.alias is not None
        # as in durable-rules, one fact matches at most one condition of a rule
        extended = [
            {**b, cond.alias: f}
            for b in bindings
            for f in candidates
            if not any(f is bound for bound in b.values()) and _holds(cond, f, b, config)
        ]
        if not extended:
            return f"condition {number} ({_describe(cond)}): no fact matches"
        bindings = extended[:_MAX_BINDINGS]
    return None


def _describe(cond: Condition) -> str:
    head = f"absent {cond.absent}" if cond.absent else f"{cond.fact} as {cond.alias}"
    if not cond.where:
        return head
    tests = ", ".join(f"{attr} {spec}" for attr, spec in cond.where.items())
    return f"{head} where {tests}"


def _holds(cond: Condition, fact: Fact, binding: Binding, config: Mapping[str, Any]) -> bool:
    for attr, spec in cond.where.items():
        value = fact.get(attr)
        tests = spec if isinstance(spec, dict) else {"eq": spec}
        for op, operand in tests.items():
            if not _test(op, value, operand, binding, config):
                return False
    return True


def _test(op: str, value: Any, operand: Any, binding: Binding, config: Mapping[str, Any]) -> bool:
    if op == "exists":
        return (value is not None) == bool(operand)
    if value is None:
        return False
    if op == "in":
        return any(_test("eq", value, option, binding, config) for option in operand)
    right = _resolve(operand, binding, config)
    if right is None:
        return False
    if op == "eq":
        return bool(value == right)
    try:
        return _COMPARE[op](value, right)
    except TypeError:
        return False


def _resolve(operand: Any, binding: Binding, config: Mapping[str, Any]) -> Any:
    parsed = parse_value(operand, binding.keys(), config)
    if isinstance(parsed, Const):
        return parsed.value
    assert isinstance(parsed, Ref)
    value = binding[parsed.alias].get(parsed.attr)
    return value + parsed.offset if value is not None and parsed.offset else value
