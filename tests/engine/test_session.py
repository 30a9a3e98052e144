"""RuleEngine.evaluate: firings in order, bound and derived facts, resolved outcomes, and
negation that does not depend on the order facts arrive in."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cds.engine import RuleEngine
from tests.engine.ruledir import compile_texts

SESSION_RULES = """\
statement: Firings, derived facts and outcome values in one session.
rules:
  - id: exposure
    title: A taken drug is an exposure
    priority: 5
    when: [{fact: med, as: m, where: {draft: false}}]
    then:
      derive:
        fact: exposure
        with: {drug: m.drug, day: m.day, dose: m.dose, kind: taken}
  - id: link
    title: A symptom within the window after the drug
    priority: 10
    when:
      - {fact: exposure, as: e, where: {day: {exists: true}}}
      - {fact: symptom, as: s, where: {day: {gte: e.day, lte: e.day + config.window}}}
    then:
      derive:
        fact: link
        with:
          drug: e.drug
          region: s.region
          lag: s.day - e.day
          due: s.day + 2
          before: s.day - config.window
  - id: review
    title: A draft order for a linked drug
    priority: 20
    when:
      - {fact: link, as: l}
      - {fact: med, as: order, where: {draft: true, drug: l.drug}}
    then:
      card:
        template: review
        with:
          drug: l.drug
          region: l.region
          days: l.lag
          dose: order.dose
          fraction: config.fraction
          note: fixed text
  - id: unlinked
    title: An exposure without a link
    priority: 30
    when:
      - {fact: exposure, as: e}
      - {absent: link, where: {drug: e.drug}}
    then:
      card:
        template: observe
        with: {drug: e.drug, dose: e.dose, since: e.day, gap: e.day - e.dose}
cards:
  review:
    indicator: warning
    summary: "Review {drug}"
    detail: "Values: {region} {days} {dose} {fraction} {note}"
  observe:
    indicator: info
    summary: "Observe {drug}"
    detail: "Values: {dose} {since} {gap}"
"""

MED_A = {"fact": "med", "drug": "a", "draft": False, "day": 10, "dose": 2.5}
MED_B = {"fact": "med", "drug": "b", "draft": False, "day": None, "dose": None}
LEG = {"fact": "symptom", "region": "leg", "day": 13, "severe": False}
ORDER_A = {"fact": "med", "drug": "a", "draft": True, "dose": 5.0, "day": None}
ARM = {"fact": "symptom", "region": "arm", "day": 30, "severe": True}


@pytest.fixture
def engine(tmp_path: Path) -> RuleEngine:
    return RuleEngine(compile_texts(tmp_path, {"r.yaml": SESSION_RULES}))


def _without_none(fact: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fact.items() if v is not None}


def test_firings_in_order_with_bound_and_derived_facts(engine: RuleEngine) -> None:
    facts = [MED_A, MED_B, LEG, ORDER_A, ARM]
    result = engine.evaluate(facts)

    # priorities order stage 1; the negation runs in stage 2 once all links exist
    assert [f.rule_id for f in result.firings] == [
        "exposure",
        "exposure",
        "link",
        "review",
        "unlinked",
    ]
    assert [f.stage for f in result.firings] == [1, 1, 1, 1, 2]
    exposures = result.firings[:2]
    assert sorted(f.bound["m"]["drug"] for f in exposures) == ["a", "b"]
    by_drug = {f.bound["m"]["drug"]: f for f in exposures}
    # bound facts are the asserted facts, without engine keys and without None values
    assert by_drug["a"].bound == {"m": MED_A}
    assert by_drug["b"].bound == {"m": _without_none(MED_B)}
    assert by_drug["a"].derived == {
        "fact": "exposure",
        "drug": "a",
        "day": 10,
        "dose": 2.5,
        "kind": "taken",
    }
    # None attributes are left out of derived facts
    assert by_drug["b"].derived == {"fact": "exposure", "drug": "b", "kind": "taken"}

    link = result.firings[2]
    assert link.bound == {"e": by_drug["a"].derived, "s": LEG}
    assert link.derived == {
        "fact": "link",
        "drug": "a",
        "region": "leg",
        "lag": 13 - 10,
        "due": 13 + 2,
        "before": 13 - 5,
    }

    review = result.firings[3]
    assert review.bound == {"l": link.derived, "order": _without_none(ORDER_A)}
    assert review.derived is None

    unlinked = result.firings[4]
    assert unlinked.bound == {"e": by_drug["b"].derived}

    assert result.derived_facts == [f.derived for f in result.firings if f.derived]
    assert len(result.derived_facts) == 3
    # 5 facts + 2 exposures + 1 link + the gates of stages 1 and 2
    assert result.fact_count == 10


def test_outcomes_carry_resolved_values(engine: RuleEngine) -> None:
    result = engine.evaluate([MED_A, MED_B, LEG, ORDER_A, ARM])
    assert [(o.rule_id, o.template) for o in result.outcomes] == [
        ("review", "review"),
        ("unlinked", "observe"),
    ]
    review, unlinked = result.outcomes
    assert dict(review.values) == {
        "drug": "a",
        "region": "leg",
        "days": 3,
        "dose": 5.0,
        "fraction": 0.5,
        "note": "fixed text",
    }
    # dose, since and gap (a difference involving a missing value) are left out
    assert dict(unlinked.values) == {"drug": "b"}


def test_difference_of_two_bound_attributes(engine: RuleEngine) -> None:
    med = {"fact": "med", "drug": "c", "draft": False, "day": 40, "dose": 1.5}
    (outcome,) = engine.evaluate([med]).outcomes
    assert dict(outcome.values) == {"drug": "c", "dose": 1.5, "since": 40, "gap": 40 - 1.5}


def test_window_bounds_are_inclusive(engine: RuleEngine) -> None:
    for day, linked in [(9, False), (10, True), (15, True), (16, False)]:
        symptom = {**LEG, "day": day}
        rules = [f.rule_id for f in engine.evaluate([MED_A, symptom]).firings]
        assert ("link" in rules) is linked, (day, rules)
        assert ("unlinked" in rules) is not linked, (day, rules)


def test_input_facts_are_not_modified(engine: RuleEngine) -> None:
    facts = [dict(MED_A), dict(MED_B), dict(LEG)]
    engine.evaluate(facts)
    assert facts == [MED_A, MED_B, LEG]


def test_sessions_do_not_share_facts(engine: RuleEngine) -> None:
    assert [f.rule_id for f in engine.evaluate([MED_A]).firings] == ["exposure", "unlinked"]
    # the symptom alone cannot link to the previous request's exposure
    assert engine.evaluate([LEG]).firings == []
    assert engine.evaluate([]).firings == []


def test_identical_facts_are_distinct_facts(engine: RuleEngine) -> None:
    result = engine.evaluate([MED_A, dict(MED_A)])
    assert [f.rule_id for f in result.firings] == ["exposure", "exposure", "unlinked", "unlinked"]


# --- negation is order-independent: engine vs a plain-Python oracle ------------------

NEGATION_RULES = """\
statement: Negation over base and derived facts, in three strata.
rules:
  - id: exposure
    title: A taken drug is an exposure
    when: [{fact: med, as: m, where: {draft: false}}]
    then: {derive: {fact: exposure, with: {drug: m.drug, day: m.day}}}
  - id: link
    title: A symptom within the window after an exposure
    when:
      - {fact: exposure, as: e}
      - {fact: symptom, as: s, where: {day: {gte: e.day, lte: e.day + config.window}}}
    then: {derive: {fact: link, with: {drug: e.drug, region: s.region, lag: s.day - e.day}}}
  - id: unlinked
    title: An exposure of a drug with no link
    when:
      - {fact: exposure, as: e}
      - {absent: link, where: {drug: e.drug}}
    then: {derive: {fact: unlinked, with: {drug: e.drug}}}
  - id: card-linked
    title: Every link
    when: [{fact: link, as: l}]
    then: {card: {template: linked, with: {drug: l.drug, region: l.region, lag: l.lag}}}
  - id: card-draft-clear
    title: A draft of a drug with no unlinked exposure
    when:
      - {fact: med, as: m, where: {draft: true}}
      - {absent: unlinked, where: {drug: m.drug}}
    then: {card: {template: plain, with: {drug: m.drug}}}
  - id: card-untreated
    title: A severe symptom and no medication at all
    when:
      - {fact: symptom, as: s, where: {severe: true}}
      - {absent: med}
    then: {card: {template: plain, with: {drug: s.region}}}
  - id: card-no-symptom-region
    title: An exposure and no symptom in the leg
    when:
      - {fact: exposure, as: e}
      - {absent: symptom, where: {region: leg}}
    then: {card: {template: plain, with: {drug: e.drug}}}
cards:
  linked:
    indicator: info
    summary: "Linked {drug}"
    detail: "Region {region} after {lag} days"
  plain:
    indicator: info
    summary: "Plain {drug}"
    detail: "About {drug}"
"""

WINDOW = 5  # config.window in tests/engine/ruledir.py


def _random_facts(rng: random.Random) -> list[dict[str, Any]]:
    facts: list[dict[str, Any]] = []
    for _ in range(rng.randint(0, 4)):
        facts.append(
            {
                "fact": "med",
                "drug": rng.choice("abc"),
                "day": rng.randint(0, 12),
                "draft": rng.random() < 0.4,
            }
        )
    for _ in range(rng.randint(0, 4)):
        facts.append(
            {
                "fact": "symptom",
                "region": rng.choice(["leg", "arm", "back"]),
                "day": rng.randint(0, 20),
                "severe": rng.random() < 0.5,
            }
        )
    return facts


def _key(rule_id: str, values: Any) -> tuple[str, tuple[tuple[str, Any], ...]]:
    return rule_id, tuple(sorted(values.items()))


def _oracle(facts: list[dict[str, Any]]) -> tuple[Counter[Any], Counter[Any]]:
    """What the rules mean, in plain Python: (outcomes, derived facts) as multisets."""
    return _oracle_with_blocked(facts)[:2]


def _oracle_with_blocked(
    facts: list[dict[str, Any]],
) -> tuple[Counter[Any], Counter[Any], Counter[str]]:
    meds = [f for f in facts if f["fact"] == "med"]
    symptoms = [f for f in facts if f["fact"] == "symptom"]
    exposures = [{"drug": m["drug"], "day": m["day"]} for m in meds if not m["draft"]]
    links = [
        {"drug": e["drug"], "region": s["region"], "lag": s["day"] - e["day"]}
        for e in exposures
        for s in symptoms
        if e["day"] <= s["day"] <= e["day"] + WINDOW
    ]
    unlinked = [
        {"drug": e["drug"]} for e in exposures if not any(lk["drug"] == e["drug"] for lk in links)
    ]
    outcomes: Counter[Any] = Counter()
    outcomes.update(_key("card-linked", lk) for lk in links)
    outcomes.update(
        _key("card-draft-clear", {"drug": m["drug"]})
        for m in meds
        if m["draft"] and not any(u["drug"] == m["drug"] for u in unlinked)
    )
    outcomes.update(
        _key("card-untreated", {"drug": s["region"]}) for s in symptoms if s["severe"] and not meds
    )
    if not any(s["region"] == "leg" for s in symptoms):
        outcomes.update(_key("card-no-symptom-region", {"drug": e["drug"]}) for e in exposures)
    derived: Counter[Any] = Counter()
    derived.update(_key("exposure", e) for e in exposures)
    derived.update(_key("link", lk) for lk in links)
    derived.update(_key("unlinked", u) for u in unlinked)
    # how often a negation stopped a rule whose positive conditions matched
    blocked: Counter[str] = Counter()
    blocked["unlinked"] = len(exposures) - len(unlinked)
    blocked["card-draft-clear"] = sum(
        1 for m in meds if m["draft"] and any(u["drug"] == m["drug"] for u in unlinked)
    )
    blocked["card-untreated"] = sum(1 for s in symptoms if s["severe"] and meds)
    if any(s["region"] == "leg" for s in symptoms):
        blocked["card-no-symptom-region"] = len(exposures)
    return outcomes, derived, blocked


def _observed(engine: RuleEngine, facts: list[dict[str, Any]]) -> tuple[Counter[Any], Counter[Any]]:
    result = engine.evaluate(facts)
    outcomes = Counter(_key(o.rule_id, o.values) for o in result.outcomes)
    derived = Counter(
        _key(d["fact"], {k: v for k, v in d.items() if k != "fact"}) for d in result.derived_facts
    )
    return outcomes, derived


def test_negation_is_order_independent(tmp_path: Path) -> None:
    compiled = compile_texts(tmp_path, {"r.yaml": NEGATION_RULES})
    assert compiled.config["window"] == WINDOW
    assert compiled.stages == 3
    engine = RuleEngine(compiled)
    rng = random.Random(94)  # durable-rules issue #94
    fired: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    for case in range(300):
        facts = _random_facts(rng)
        outcomes, derived, stopped = _oracle_with_blocked(facts)
        expected = (outcomes, derived)
        fired.update(rule for rule, _ in outcomes.elements())
        fired.update(rule for rule, _ in derived.elements())
        blocked.update(stopped)
        orders = [facts, facts[::-1]]
        for _ in range(3):
            shuffled = list(facts)
            rng.shuffle(shuffled)
            orders.append(shuffled)
        for order in orders:
            assert _observed(engine, order) == expected, (case, order)
    # the random cases exercise every rule, and every negation both passing and blocking
    assert set(fired) == set(compiled.rules)
    assert min(fired.values()) >= 20, fired
    assert set(blocked) == {
        rule for rule in compiled.rules if "absent" in str(compiled.definition[rule])
    }
    assert min(blocked.values()) >= 20, blocked
