"""ResultReuse: the same facts get the engine's same answer without a session; any
other facts, and a non-JSON value, go to the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from cds.engine import EngineResult, RuleEngine
from cds.engine.reuse import ResultReuse
from cds.errors import EvaluationLimitError
from cds.rulebase import RuleBase
from tests.engine.bundled import complaint, medication


class CountingEngine:
    """The real engine, counting the sessions it runs."""

    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine
        self.calls = 0

    def evaluate(self, facts: Sequence[Mapping[str, Any]]) -> EngineResult:
        self.calls += 1
        return self.engine.evaluate(facts)


def _facts(dose: float = 800.0) -> list[dict[str, Any]]:
    return [
        medication("amisulpride", draft=True, mg_per_day=dose),
        medication("amisulpride"),
        complaint("back"),
    ]


def _answer(result: EngineResult) -> tuple[Any, ...]:
    return (result.outcomes, result.firings, result.fact_count)


def test_the_same_facts_get_the_same_answer_without_a_session(rulebase: RuleBase) -> None:
    engine = CountingEngine(rulebase.engine)
    reuse = ResultReuse()
    fresh = rulebase.engine.evaluate(_facts())
    assert fresh.outcomes  # the facts raise a card
    first = reuse.evaluate(engine, _facts())
    second = reuse.evaluate(engine, _facts())
    assert engine.calls == 1
    assert _answer(first) == _answer(fresh)
    assert _answer(second) == _answer(fresh)
    second.outcomes.clear()  # a caller's change to its copy reaches nobody else
    assert _answer(reuse.evaluate(engine, _facts())) == _answer(fresh)


def test_other_facts_are_evaluated(rulebase: RuleBase) -> None:
    engine = CountingEngine(rulebase.engine)
    reuse = ResultReuse()
    reuse.evaluate(engine, _facts(800.0))
    other = reuse.evaluate(engine, _facts(400.0))
    assert engine.calls == 2
    assert _answer(other) == _answer(rulebase.engine.evaluate(_facts(400.0)))


def test_a_value_without_exact_json_is_never_reused(rulebase: RuleBase) -> None:
    """orjson writes NaN as null: such facts always reach the engine (which refuses them)."""
    engine = CountingEngine(rulebase.engine)
    reuse = ResultReuse()
    for _ in range(2):
        with pytest.raises(EvaluationLimitError):
            reuse.evaluate(engine, _facts(float("nan")))
    assert (engine.calls, len(reuse)) == (2, 0)


def test_bounded(rulebase: RuleBase) -> None:
    reuse = ResultReuse(max_entries=2)
    for dose in (100.0, 200.0, 300.0):
        reuse.evaluate(rulebase.engine, _facts(dose))
    assert len(reuse) == 2
