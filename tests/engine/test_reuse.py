"""ResultReuse: the same facts get the engine's same answer without a session; any
other facts, and a non-JSON value, go to the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from cds.engine import EngineResult, RuleEngine, approximate_size
from cds.engine.reuse import ResultReuse, result_weight
from cds.errors import EvaluationLimitError
from cds.hooks import SERVICES, evaluate, parse_request
from cds.rulebase import RuleBase
from tests.conftest import EXAMPLES, load_example
from tests.engine.bundled import complaint, medication

REQUESTS = sorted(p for p in EXAMPLES.glob("*.json") if not p.name.endswith(".expected.json"))


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


def _heavy(index: int) -> list[dict[str, Any]]:
    """Facts whose complaint shows a 20,000-character note: every firing binds it."""
    facts = _facts()
    facts[2]["display"] = f"{index} " + "restless back when lying down " * 666
    return facts


def test_bounded_by_bytes_as_well_as_entries(rulebase: RuleBase) -> None:
    """Each such answer keeps ~80 KB alive (the note bound in every firing): before the
    byte bound, 1,024 of them kept ~85 MB. 40 of them go into 2 MiB here, which keeps what
    fits (by the estimate, which counts long text up to 8 times over), the latest."""
    reuse = ResultReuse(max_entries=1000, max_bytes=2 * 1024 * 1024)
    engine = CountingEngine(rulebase.engine)
    for index in range(40):
        reuse.evaluate(engine, _heavy(index))
        assert reuse.size_bytes <= reuse.max_bytes
    kept = approximate_size(reuse._results)  # measured, not the estimate
    assert kept <= reuse.max_bytes
    assert 1 <= len(reuse) < 40
    reuse.evaluate(engine, _heavy(39))  # the latest is still there
    assert engine.calls == 40


def test_an_answer_heavier_than_the_bound_is_not_kept(rulebase: RuleBase) -> None:
    reuse = ResultReuse(max_bytes=10_000)
    engine = CountingEngine(rulebase.engine)
    reuse.evaluate(engine, _heavy(1))
    assert (len(reuse), reuse.size_bytes) == (0, 0)


def test_the_estimate_covers_what_an_answer_keeps_alive(rulebase: RuleBase) -> None:
    """``result_weight`` (from the JSON) is at least the measured size of every bundled
    example's answer, so the byte bound holds for them."""
    for path in REQUESTS:
        body = load_example(path.name)
        body["prefetch"].setdefault("observations", None)  # no FHIR-server fallback
        service = next(s for s in SERVICES.values() if s.hook == body["hook"])
        request = parse_request(body)
        evaluation = evaluate(
            request, service, rulebase, source_label="restless-cds", override_system="urn:test"
        )
        result = evaluation.engine
        assert result_weight(result) >= approximate_size(result), path.name
