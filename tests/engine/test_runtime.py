"""The durable-rules wrapper: hashes, sid pool, fact limits, ruleset lifecycle."""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from cds.engine import CompiledRules, RuleEngine, runtime
from cds.engine.runtime import (
    GATE_FACT,
    MAX_FACTS_PER_SESSION,
    SID_POOL_SIZE,
    fnv1a32,
    live_rulesets,
    register_ruleset,
)
from cds.errors import EngineError, EvaluationLimitError
from cds.rulebase import RuleBase
from tests.engine.bundled import draft_order_case
from tests.engine.ruledir import CARDS, compile_texts, dedent

ONE_RULE = (
    """\
statement: One derive rule and one card rule for the runtime tests.
rules:
  - id: exposure
    title: A taken drug
    when: [{fact: med, as: m, where: {draft: false}}]
    then: {derive: {fact: exposure, with: {drug: m.drug}}}
  - id: card
    title: A card per exposure
    when: [{fact: exposure, as: e}]
    then: {card: {template: drug_card, with: {drug: e.drug}}}
"""
    + CARDS
)


@pytest.fixture
def compiled(tmp_path: Path) -> CompiledRules:
    return compile_texts(tmp_path, {"r.yaml": ONE_RULE})


def _no_action(rule: str, bindings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0x811C9DC5),
        ("a", 0xE40C292C),
        ("foobar", 0xBF9CF968),
    ],
)
def test_fnv1a32_known_values(text: str, expected: int) -> None:
    assert fnv1a32(text) == expected


def test_fnv1a32_reproduces_the_collision_seen_in_the_engine() -> None:
    # DURABLE_RULES.md: these two sids joined each other's facts in durable-rules
    assert fnv1a32("req-991307") == fnv1a32("req-1971740")
    assert fnv1a32("req-991307") != fnv1a32("req-991308")


def test_fnv1a32_hashes_utf8_bytes() -> None:
    assert fnv1a32("é") != fnv1a32("e")
    assert 0 <= fnv1a32("é" * 100) <= 0xFFFFFFFF


def test_sid_pool_names_hash_differently(compiled: Any) -> None:
    ruleset = register_ruleset("pool_check", compiled.definition, compiled.stages)
    sids = list(ruleset._free_sids)
    assert len(sids) == SID_POOL_SIZE
    assert len(set(sids)) == len(sids)
    assert len({fnv1a32(s) for s in sids}) == len(sids)


def test_fact_ids_hash_differently() -> None:
    ids = [str(n) for n in range(1, MAX_FACTS_PER_SESSION + 1)]
    assert len({fnv1a32(i) for i in ids}) == MAX_FACTS_PER_SESSION


def test_facts_no_rule_mentions_are_accepted(compiled: Any) -> None:
    # durable-rules refuses a fact that matches no rule (#286); the catch-all rule absorbs it
    engine = RuleEngine(compiled)
    result = engine.evaluate([{"fact": "unrelated", "x": 1}, {"fact": "symptom", "day": 1}])
    assert result.firings == []
    assert result.fact_count == 3


def test_session_may_hold_exactly_max_facts(compiled: Any) -> None:
    engine = RuleEngine(compiled)
    # the gate fact is the last one counted
    filler = [{"fact": "symptom", "day": n} for n in range(MAX_FACTS_PER_SESSION - 1)]
    result = engine.evaluate(filler)
    assert result.fact_count == MAX_FACTS_PER_SESSION
    assert result.outcomes == []


def test_session_refuses_more_than_max_facts(compiled: Any) -> None:
    engine = RuleEngine(compiled)
    filler = [{"fact": "symptom", "day": n} for n in range(MAX_FACTS_PER_SESSION)]
    # permanent: the same request would fail again, so not the 503 "retry" EngineError
    with pytest.raises(EvaluationLimitError, match="more than"):
        engine.evaluate(filler)
    assert engine.in_flight == 0


def test_derived_fact_past_the_limit_is_refused_and_the_sid_reused(compiled: Any) -> None:
    engine = RuleEngine(compiled)
    filler = [{"fact": "symptom", "day": n} for n in range(MAX_FACTS_PER_SESSION - 2)]
    med = {"fact": "med", "drug": "a", "draft": False}
    # MAX - 2 fillers + med + gate = MAX; the derived exposure is one too many
    with pytest.raises(EvaluationLimitError, match="more than"):
        engine.evaluate([*filler, med])
    assert engine.in_flight == 0
    assert len(engine._ruleset._free_sids) == SID_POOL_SIZE
    outcomes = engine.evaluate([med]).outcomes
    assert [(o.rule_id, dict(o.values)) for o in outcomes] == [("card", {"drug": "a"})]


def test_oversized_requests_do_not_drain_the_sid_pool(
    compiled: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refused before anything reached the engine, so the sid holds no state and must go
    # back to the pool; otherwise SID_POOL_SIZE oversized requests disable the ruleset.
    monkeypatch.setattr(runtime, "SID_POOL_SIZE", 2)
    monkeypatch.setattr(runtime, "MAX_FACTS_PER_SESSION", 3)
    engine = RuleEngine(compiled)
    too_many = [{"fact": "symptom", "day": n} for n in range(3)]
    for attempt in range(3):
        with pytest.raises(EvaluationLimitError) as info:
            engine.evaluate(too_many)
        assert "more than" in str(info.value), f"attempt {attempt + 1}: {info.value}"
    med = {"fact": "med", "drug": "a", "draft": False}
    assert [o.rule_id for o in engine.evaluate([med]).outcomes] == ["card"]


def test_sid_pool_exhaustion_is_an_engine_error(
    compiled: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "SID_POOL_SIZE", 1)
    engine = RuleEngine(compiled)
    seen: list[str] = []

    def nested(rule: str, bindings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        if not seen:
            seen.append(rule)
            with pytest.raises(EngineError, match="no free"):
                engine._ruleset.run([], _no_action)
        return []

    engine._ruleset.run([{"fact": "med", "drug": "a", "draft": False}], nested)
    assert seen == ["exposure"]
    # the single sid came back and serves the next request
    assert engine.evaluate([]).outcomes == []


def test_register_ruleset_refuses_a_reused_name(compiled: Any) -> None:
    register_ruleset("twice", compiled.definition, compiled.stages)
    with pytest.raises(EngineError, match="already registered"):
        register_ruleset("twice", compiled.definition, compiled.stages)
    assert live_rulesets() == ["twice"]


def test_register_ruleset_reports_a_rejected_definition() -> None:
    with pytest.raises(EngineError, match="rejected"):
        register_ruleset("bad", {"r": {"all": [{"m": {"fact": "a"}}], "oops": 1}}, 1)
    assert "bad" not in live_rulesets()


def test_retire_waits_for_in_flight_sessions(compiled: Any) -> None:
    engine = RuleEngine(compiled)
    observed: list[tuple[list[str], int]] = []

    def retire_mid_session(rule: str, bindings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        if not observed:
            engine.close()
            observed.append((live_rulesets(), engine.in_flight))
        return []

    engine._ruleset.run([{"fact": "med", "drug": "a", "draft": False}], retire_mid_session)
    assert observed == [([engine.name], 1)], "deleted while a session still used it"
    assert engine.name not in live_rulesets()
    with pytest.raises(EngineError, match="retired"):
        engine.evaluate([])


def test_retire_without_sessions_deletes_at_once(compiled: Any) -> None:
    engine = RuleEngine(compiled)
    assert engine.name in live_rulesets()
    engine.close()
    engine.close()  # idempotent
    assert engine.name not in live_rulesets()


def test_reset_leaves_nothing_registered(compiled: Any) -> None:
    engines = [RuleEngine(compiled, label=f"reset{n}") for n in range(3)]
    assert {e.name for e in engines} <= set(live_rulesets())
    runtime.reset()
    assert live_rulesets() == []
    for engine in engines:
        with pytest.raises(EngineError):
            engine.evaluate([])


def test_a_reload_swaps_rulesets_without_disturbing_the_old_one(compiled: Any) -> None:
    old = RuleEngine(compiled)
    new = RuleEngine(compiled)
    assert old.name != new.name
    med = {"fact": "med", "drug": "a", "draft": False}
    old.close()
    assert [o.rule_id for o in new.evaluate([med]).outcomes] == ["card"]
    assert live_rulesets() == [new.name]


def test_failing_action_is_an_engine_error_and_frees_the_session(compiled: Any) -> None:
    ruleset = register_ruleset("failing", compiled.definition, compiled.stages)

    def boom(rule: str, bindings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        raise ValueError("handler broke")

    with pytest.raises(EngineError, match="handler broke"):
        ruleset.run([{"fact": "med", "drug": "a", "draft": False}], boom)
    assert ruleset.in_flight == 0
    assert len(ruleset._free_sids) == SID_POOL_SIZE
    # the sid is clean: a later session sees none of the failed session's facts
    fired: list[tuple[str, dict[str, Any]]] = []

    def record(rule: str, bindings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        fired.append((rule, bindings))
        return [{"fact": "exposure", "drug": "b"}] if rule == "exposure" else []

    for _ in range(SID_POOL_SIZE + 1):
        fired.clear()
        ruleset.run([{"fact": "med", "drug": "b", "draft": False}], record)
        assert [r for r, _ in fired] == ["exposure", "card"]


def test_every_stage_gate_is_asserted(tmp_path: Path) -> None:
    text = """\
    statement: Three strata, one rule each.
    rules:
      - id: one
        title: Stage one
        when: [{fact: med, as: m}]
        then: {derive: {fact: first, with: {drug: m.drug}}}
      - id: two
        title: Stage two
        when: [{fact: med, as: m}, {absent: first, where: {drug: nothing}}]
        then: {derive: {fact: second, with: {drug: m.drug}}}
      - id: three
        title: Stage three
        when: [{fact: med, as: m}, {absent: second, where: {drug: nothing}}]
        then: {card: {template: drug_card, with: {drug: m.drug}}}
    """
    compiled = compile_texts(tmp_path, {"r.yaml": dedent(text) + CARDS})
    assert compiled.stages == 3
    ruleset = register_ruleset("strata", compiled.definition, compiled.stages)
    order: list[str] = []

    def record(rule: str, bindings: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        order.append(rule)
        gate = bindings["gate__"]
        assert gate["fact"] == GATE_FACT
        assert gate["stage"] == compiled.rules[rule].stage
        facts = {"one": "first", "two": "second"}
        return [{"fact": facts[rule], "drug": "a"}] if rule in facts else []

    # asserted facts: med, gate 1, first, gate 2, second, gate 3
    assert ruleset.run([{"fact": "med", "drug": "a"}], record) == 6
    assert order == ["one", "two", "three"]


# --- many sessions: memory stays flat, concurrent sessions stay apart ---------------


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def test_memory_stays_flat_over_thousands_of_requests(rulebase: RuleBase) -> None:
    facts = draft_order_case()
    for _ in range(300):  # warm-up: allocator pools, caches
        rulebase.engine.evaluate(facts)
    gc.collect()
    before = _rss_bytes()
    for _ in range(3000):
        result = rulebase.engine.evaluate(facts)
    gc.collect()
    grown = _rss_bytes() - before
    assert [o.rule_id for o in result.outcomes] == ["dose-review.draft-order"]
    assert rulebase.engine.in_flight == 0
    assert grown < 5 * 2**20, f"RSS grew {grown / 2**20:.1f} MB over 3000 requests"


def test_memory_stays_flat_over_reloads(rulebase: RuleBase) -> None:
    compiled = rulebase.compiled
    facts = draft_order_case()

    def reload_once() -> None:
        engine = RuleEngine(compiled, label="reload")
        engine.evaluate(facts)
        engine.close()

    for _ in range(30):
        reload_once()
    gc.collect()
    before = _rss_bytes()
    for _ in range(300):
        reload_once()
    gc.collect()
    grown = _rss_bytes() - before
    assert live_rulesets() == [rulebase.engine.name]
    assert grown < 5 * 2**20, f"RSS grew {grown / 2**20:.1f} MB over 300 reloads"


THREADS = 8
SESSIONS_PER_THREAD = 250


def test_concurrent_sessions_see_only_their_own_facts(
    rulebase: RuleBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = rulebase.engine
    overlap = [0]
    real_run_session = runtime._run_session

    def counting_run_session(ruleset, lease, facts, on_action):
        overlap[0] = max(overlap[0], ruleset.in_flight)
        return real_run_session(ruleset, lease, facts, on_action)

    monkeypatch.setattr(runtime, "_run_session", counting_run_session)
    start = threading.Barrier(THREADS)
    errors: list[str] = []

    completed = [0] * THREADS

    def worker(thread: int) -> None:
        start.wait()
        for i in range(SESSIONS_PER_THREAD):
            drug = f"drug-t{thread}-s{i}"
            region = ("back", "leg", "arm")[(thread + i) % 3]
            try:
                result = engine.evaluate(draft_order_case(drug, region))
            except Exception as exc:  # a thread's exception would otherwise be lost
                errors.append(f"thread {thread} session {i}: {type(exc).__name__}: {exc}")
                continue
            completed[thread] += 1
            seen = [
                (o.rule_id, o.values.get("drug"), o.values.get("region")) for o in result.outcomes
            ]
            if seen != [("dose-review.draft-order", drug, region)]:
                errors.append(f"thread {thread} session {i}: {seen}")
            for firing in result.firings:
                for fact in firing.bound.values():
                    marker = fact.get("ingredient", fact.get("drug"))
                    if marker is not None and marker != drug:
                        errors.append(f"thread {thread} session {i} bound {fact}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so sessions interleave
    try:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors[:5] == [], f"{len(errors)} errors"
    assert completed == [SESSIONS_PER_THREAD] * THREADS
    assert overlap[0] > 1, "sessions never overlapped; the test proved nothing"
    assert engine.in_flight == 0
    assert len(engine._ruleset._free_sids) == SID_POOL_SIZE


WIDE_FACT_SCRIPT = """
import sys
from pathlib import Path
from cds.engine import RuleEngine, compile_rules
from cds.engine.yamlpos import LocatedYaml
from cds.errors import EvaluationLimitError
config = LocatedYaml(Path("config.yaml"), {"version": "1", "settings": {}}, {})
rules = LocatedYaml(Path("r.yaml"), {
    "statement": "One rule to evaluate a wide fact with.",
    "rules": [{
        "id": "any-med", "title": "Any medication",
        "when": [{"fact": "med", "as": "m"}],
        "then": {"derive": {"fact": "seen", "with": {"drug": "m.drug"}}},
    }],
}, {})
engine = RuleEngine(compile_rules(config, [rules], {"med": {"drug": str}}))
width = int(sys.argv[1])
wide = {"fact": "med", "drug": "a", **{f"p{i}": i for i in range(width - 2)}}
try:
    result = engine.evaluate([wide, {"fact": "med", "drug": "b"}])
    print("evaluated", len(result.firings))
except EvaluationLimitError as exc:
    print("EvaluationLimitError", exc)
"""


def _evaluate_wide_fact(width: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WIDE_FACT_SCRIPT, str(width)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_fact_of_many_properties_is_refused_not_a_crash() -> None:
    # durable-rules truncates a batch after a fact of 255+ properties (DURABLE_RULES.md)
    # and crashes the process (SIGSEGV) when that fact is not the last one; the wrapper
    # must refuse such a fact (permanently). Run apart: a crash would end pytest.
    narrow = _evaluate_wide_fact(50)
    assert (narrow.returncode, narrow.stdout.strip()) == (0, "evaluated 2"), narrow.stderr
    wide = _evaluate_wide_fact(300)
    assert wide.returncode == 0, f"process died with code {wide.returncode}"
    assert wide.stdout.startswith("EvaluationLimitError"), wide.stdout + wide.stderr


NUMBER_SCRIPT = """
import json, sys
from pathlib import Path
from cds.engine import RuleEngine, compile_rules
from cds.engine.yamlpos import LocatedYaml
from cds.errors import EvaluationLimitError
config = LocatedYaml(Path("config.yaml"), {"version": "1", "settings": {}}, {})
rules = LocatedYaml(Path("r.yaml"), {
    "statement": "A derived fact carries the number back into the engine.",
    "rules": [{
        "id": "any-med", "title": "Any medication",
        "when": [{"fact": "med", "as": "m"}],
        "then": {"derive": {"fact": "seen", "with": {"dose": "m.dose"}}},
    }],
}, {})
engine = RuleEngine(compile_rules(config, [rules], {"med": {"dose": float}}))
for text in sys.argv[1:]:
    try:
        result = engine.evaluate([{"fact": "med", "dose": json.loads(text)}])
        print(text, "evaluated", [f.derived for f in result.firings])
    except EvaluationLimitError as exc:
        print(text, "refused", exc)
"""


def test_numbers_the_engine_cannot_parse_are_refused_in_process_not_a_crash() -> None:
    """Regression: durable-rules crashed the process (SIGSEGV) on a float Python writes
    in exponent form (1e16, 1e-05); the HTTP path was guarded by rounding doses, any
    other caller was not. The guard now sits in the engine wrapper: every fact, given or
    derived, is checked on its way in. Run apart: a crash would end pytest."""
    bad = ["1e16", "1e-5", "-2.5e20", "1e300", "18446744073709551616"]
    good = ["0", "2.5", "0.0001", "9999999999999998.0", "-7"]
    run = subprocess.run(
        [sys.executable, "-c", NUMBER_SCRIPT, *good, *bad],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, f"process died with code {run.returncode}: {run.stderr}"
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    for text in good:
        assert lines[text].startswith("evaluated"), lines[text]
        assert str(json.loads(text)) in lines[text]
    for text in bad:
        assert lines[text].startswith("refused 'med.dose'"), lines[text]


def test_non_finite_numbers_are_refused_in_process(compiled: Any) -> None:
    """Regression: NaN and infinities are not JSON; the engine must never receive one."""
    engine = RuleEngine(compiled)
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(EvaluationLimitError, match=r"med\.dose"):
            engine.evaluate([{"fact": "med", "drug": "a", "draft": False, "dose": value}])
    assert engine.in_flight == 0
