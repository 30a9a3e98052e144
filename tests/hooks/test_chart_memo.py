"""The chart memo in the pipeline: an unchanged prefetch is read once, and what it
serves is exactly what a fresh reading gives, for every example, in any order; another
patient, or a draft that brings its own Medication or Condition, is read afresh."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import random
from typing import Any

from cds.engine import ResultReuse
from cds.facts import ChartMemo, FactCache
from cds.hooks import SERVICES, evaluate, parse_request
from cds.hooks.pipeline import Evaluation
from cds.rulebase import RuleBase
from tests.conftest import EXAMPLES, for_patient, load_example

TODAY = dt.date(2026, 11, 20)
REQUESTS = sorted(p.name for p in EXAMPLES.glob("*.json") if not p.name.endswith(".expected.json"))


def _run(body: dict[str, Any], rulebase: RuleBase) -> Evaluation:
    request = parse_request(body)
    service = next(s for s in SERVICES.values() if s.hook == request.hook)
    return evaluate(request, service, rulebase, source_label="x", override_system="x", today=TODAY)


def _forgetful(rulebase: RuleBase) -> RuleBase:
    """The same rules and engine with empty memories: every reading is a fresh one."""
    return dataclasses.replace(
        rulebase,
        fact_cache=FactCache(rulebase.version),
        engine_results=ResultReuse(),
        chart_memo=ChartMemo(rulebase.version),
    )


def _without_uuids(value: Any) -> Any:
    """Cards as compared: card and suggestion uuids are new on every render."""
    if isinstance(value, dict):
        return {k: _without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [_without_uuids(v) for v in value]
    return value


def _summary(result: Evaluation) -> tuple[Any, ...]:
    out = result.extraction
    cards = _without_uuids(result.cards)
    return (sorted(map(repr, out.facts)), sorted(map(repr, out.issues)), out.left_out, cards)


def test_every_example_served_from_the_memo_reads_as_a_fresh_one(rulebase: RuleBase) -> None:
    bodies = {name: load_example(name) for name in REQUESTS}
    fresh = {name: _summary(_run(body, _forgetful(rulebase))) for name, body in bodies.items()}
    order = [*REQUESTS, *REQUESTS]
    random.Random(7).shuffle(order)
    for name in order:
        assert _summary(_run(bodies[name], rulebase)) == fresh[name], name


def test_an_unchanged_chart_is_read_once_while_the_draft_changes(rulebase: RuleBase) -> None:
    body = load_example("restless-back-amisulpride.json")
    first = _run(body, rulebase)
    hits_after_first = rulebase.fact_cache.hits + rulebase.fact_cache.misses
    changed = copy.deepcopy(body)
    draft = changed["context"]["draftOrders"]["entry"][0]["resource"]
    draft["note"] = [{"text": "changed while the clinician edits the order"}]
    second = _run(changed, rulebase)
    lookups = rulebase.fact_cache.hits + rulebase.fact_cache.misses - hits_after_first
    assert lookups == 1  # the draft only: the chart came from the memo
    assert len(rulebase.chart_memo) == 1
    assert [c["summary"] for c in second.cards] == [c["summary"] for c in first.cards]


def test_the_same_chart_for_another_patient_is_not_served(rulebase: RuleBase) -> None:
    body = load_example("restless-back-amisulpride.json")
    assert _run(body, rulebase).cards
    other = copy.deepcopy(body)
    other["context"]["patientId"] = "someone-else"  # the chart still names the first patient
    result = _run(other, rulebase)
    assert result.cards == []
    assert result.extraction.left_out.get("other-patient", 0) >= 2
    moved = for_patient(body, "someone-else")  # that patient's own identical chart
    assert len(_run(moved, rulebase).cards) == len(_run(body, rulebase).cards)


def test_a_draft_bringing_its_own_medication_is_read_with_the_chart(rulebase: RuleBase) -> None:
    body = load_example("medication-reference-risperidone-increase.json")
    baseline = _summary(_run(body, rulebase))
    bundle = copy.deepcopy(body)
    entries = bundle["context"]["draftOrders"]["entry"]
    entries.append(
        {"resource": {"resourceType": "Medication", "id": "unrelated", "code": {"text": "x"}}}
    )
    assert _summary(_run(bundle, rulebase))[3] == baseline[3]  # same cards
