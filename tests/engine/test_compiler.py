"""Rule files -> durable-rules definition: located problems, ``$and``, strata, cycles."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds.engine import RuleEngine, compile_rules, load_located_yaml
from cds.engine.runtime import GATE_FACT, live_rulesets
from cds.facts import FACT_SCHEMA
from cds.rulebase import load_rulebase, rule_files
from tests.engine.ruledir import (
    CARDS,
    column_of,
    compile_texts,
    dedent,
    line_of,
    problems_of,
    split_where,
)

GOOD = (
    """\
statement: A valid file the problem cases are variations of.
rules:
  - id: exposure
    title: A taken drug is an exposure
    when:
      - fact: med
        as: m
        where:
          draft: false
    then:
      derive:
        fact: exposure
        with:
          drug: m.drug
          day: m.day
  - id: card-rule
    title: A card about an exposure
    priority: 10
    when:
      - fact: exposure
        as: e
      - fact: symptom
        as: s
        where:
          day: {gte: e.day}
    then:
      card:
        template: drug_card
        with:
          drug: e.drug
"""
    + CARDS
)


def test_the_base_case_compiles(tmp_path: Path) -> None:
    compiled = compile_texts(tmp_path, {"r.yaml": GOOD})
    assert set(compiled.rules) == {"exposure", "card-rule"}
    assert compiled.rules["exposure"].derive_fact == "exposure"
    assert compiled.rules["card-rule"].card_template == "drug_card"
    assert compiled.config["window"] == 5
    # derived fact types join the schema with the attributes their rules set
    assert set(compiled.fact_schema["exposure"]) == {"drug", "day"}


# (replace this text of GOOD, with this, the line holding needle is wrong, message says)
LOCATED_CASES = {
    "unknown fact type": (
        "      - fact: symptom\n",
        "      - fact: symptoms\n",
        "fact: symptoms",
        "unknown fact type 'symptoms'",
    ),
    "unknown fact type in absent": (
        "      - fact: symptom\n        as: s\n",
        "      - absent: symptoms\n",
        "absent: symptoms",
        "unknown fact type 'symptoms'",
    ),
    "unknown attribute": (
        "          draft: false\n",
        "          draft: false\n          dosage: 3\n",
        "dosage: 3",
        "'med' has no attribute 'dosage'",
    ),
    "unknown attribute of a derived fact": (
        "          day: {gte: e.day}\n",
        "          day: {gte: e.start}\n",
        "day: {gte: e.start}",
        "'e' has no attribute 'start'",
    ),
    "unbound alias in where": (
        "          day: {gte: e.day}\n",
        "          day: {gte: x.day}\n",
        "day: {gte: x.day}",
        "no earlier condition binds",
    ),
    "alias bound only by a later condition": (
        "          draft: false\n",
        "          draft: false\n          day: {gte: n.day}\n",
        "day: {gte: n.day}",
        "no earlier condition binds",
    ),
    "unbound alias in with": (
        "          drug: e.drug\n",
        "          drug: q.drug\n",
        "drug: q.drug",
        "'q'",
    ),
    "unknown config key": (
        "          day: {gte: e.day}\n",
        "          day: {lte: e.day + config.windw}\n",
        "config.windw",
        "config.windw is not defined",
    ),
    "bool attribute compared with a string": (
        "          draft: false\n",
        "          draft: sometimes\n",
        "draft: sometimes",
        "'draft' is bool",
    ),
    "int attribute compared with a string": (
        "          draft: false\n",
        "          draft: false\n          day: {gt: soon}\n",
        "day: {gt: soon}",
        "'day' is int",
    ),
    "str attribute compared with a number": (
        "          draft: false\n",
        "          draft: false\n          drug: 3\n",
        "drug: 3",
        "'drug' is str",
    ),
    "bool attribute compared with a number": (
        "          draft: false\n",
        "          draft: 0\n",
        "draft: 0",
        "'draft' is bool",
    ),
    "bool attribute compared with a string setting": (
        "          draft: false\n",
        "          draft: config.label\n",
        "draft: config.label",
        "'draft' is bool",
    ),
    "unknown test": (
        "          day: {gte: e.day}\n",
        "          day: {about: e.day}\n",
        "day: {about: e.day}",
        "unknown test 'about'",
    ),
    "unknown card template": (
        "        template: drug_card\n",
        "        template: drug_cards\n",
        "template: drug_cards",
        "no card template 'drug_cards'",
    ),
    "placeholder not supplied": (
        "        with:\n          drug: e.drug\n",
        "        with:  # card values\n          region: s.region\n",
        "# card values",
        "needs values for: drug",
    ),
    "summary of 140 characters": (
        '    summary: "About {drug}"\n',
        '    summary: "About {drug} ' + "x" * 127 + '"\n',
        "summary:",
        "summary is 140 characters",
    ),
    "priority below range": (
        "    priority: 10\n",
        "    priority: 0\n",
        "priority: 0",
        "greater than or equal to 1",
    ),
    "priority above range": (
        "    priority: 10\n",
        "    priority: 101\n",
        "priority: 101",
        "less than or equal to 100",
    ),
    "unknown key in a rule": (
        "    priority: 10\n",
        "    priority: 10\n    severity: high\n",
        "severity: high",
        "Extra inputs are not permitted",
    ),
    "unknown key in a condition": (
        "        as: e\n",
        "        as: e\n        were: {day: 1}\n",
        "were:",
        "Extra inputs are not permitted",
    ),
    "absent condition with an alias": (
        "      - fact: symptom\n        as: s\n",
        "      - absent: symptom\n        as: s\n",
        "absent: symptom",
        "binds nothing",
    ),
    "reserved alias": (
        "        as: e\n",
        "        as: config\n",
        "as: config",
        "reserved",
    ),
    "difference in where": (
        "          day: {gte: e.day}\n",
        "          day: {gte: e.day - e.day}\n",
        "day: {gte: e.day - e.day}",
        "difference",
    ),
    "sentence starting with a placeholder": (
        '    detail: "Something about {drug}."\n',
        '    detail: "Something about it. {drug} is lower case."\n',
        "detail:",
        "a sentence starts with {drug}, whose value may be lower case",
    ),
    "sentence starting in lower case": (
        '    summary: "About {drug}"\n',
        '    summary: "about {drug}"\n',
        "summary:",
        "a sentence starts with a lower-case letter",
    ),
    "unknown evidence source": (
        '    detail: "Something about {drug}."\n',
        '    detail: "Something about {drug}."\n    sources: [nobody-2020]\n',
        "nobody-2020",
        "unknown source 'nobody-2020'",
    ),
}


@pytest.mark.parametrize("case", sorted(LOCATED_CASES))
def test_problem_points_at_the_offending_line(tmp_path: Path, case: str) -> None:
    old, new, needle, message = LOCATED_CASES[case]
    assert GOOD.count(old) == 1
    text = GOOD.replace(old, new)
    problems = problems_of(tmp_path, {"r.yaml": text})
    matching = [p for p in problems if message in p.message]
    assert matching, [str(p) for p in problems]
    path, line, col = split_where(matching[0].where)
    assert path == str(tmp_path / "r.yaml")
    assert line == line_of(text, needle), str(matching[0])
    assert col >= 1


# --- card sections: paragraphs shown when the session derived facts of a type ----------

DETAIL_LINE = '    detail: "Something about {drug}."\n'


def with_section(fact: str, attribute: str, text: str = "Also on record: {list}.") -> str:
    """GOOD with one section on its card (block style: one key per line)."""
    section = (
        "    sections:\n"
        f"      - fact: {fact}\n"
        f"        attribute: {attribute}\n"
        f'        text: "{text}"\n'
    )
    assert GOOD.count(DETAIL_LINE) == 1
    return GOOD.replace(DETAIL_LINE, DETAIL_LINE + section)


@pytest.mark.parametrize(
    ("fact", "attribute"),
    [("exposure", "drug"), ("exposure", "day"), ("symptom", "region"), ("med", "dose")],
    ids=["derived", "derived-int", "base", "base-float"],
)
def test_section_on_a_known_fact_attribute_compiles(
    tmp_path: Path, fact: str, attribute: str
) -> None:
    compiled = compile_texts(tmp_path, {"r.yaml": with_section(fact, attribute)})
    (section,) = compiled.cards["drug_card"].sections
    assert (section.fact, section.attribute, section.text) == (
        fact,
        attribute,
        "Also on record: {list}.",
    )


SECTION_CASES = {
    "unknown derived fact type": (("exposures", "drug"), "fact: exposures", "'exposures'"),
    "unknown base fact type": (("symptoms", "region"), "fact: symptoms", "'symptoms'"),
    "unknown attribute of a derived fact": (
        ("exposure", "dose"),
        "attribute: dose",
        "'exposure' has no attribute 'dose'",
    ),
    "unknown attribute of a base fact": (
        ("symptom", "drug"),
        "attribute: drug",
        "'symptom' has no attribute 'drug'",
    ),
}


@pytest.mark.parametrize("case", sorted(SECTION_CASES))
def test_section_problem_points_at_its_line(tmp_path: Path, case: str) -> None:
    (fact, attribute), needle, message = SECTION_CASES[case]
    text = with_section(fact, attribute)
    problems = problems_of(tmp_path, {"r.yaml": text})
    matching = [p for p in problems if message in p.message]
    assert matching, [str(p) for p in problems]
    assert len(problems) == 1, [str(p) for p in problems]
    path, line, col = split_where(matching[0].where)
    assert path == str(tmp_path / "r.yaml")
    assert line == line_of(text, needle), str(matching[0])
    assert col == column_of(text, line, needle.split(":")[0])
    if "fact type" in case:
        assert "unknown fact type" in matching[0].message


def test_every_section_problem_is_reported(tmp_path: Path) -> None:
    # two sections: the first names an unknown attribute, the second an unknown fact
    text = with_section("exposures", "drug").replace(
        "    sections:\n",
        "    sections:\n"
        "      - fact: exposure\n"
        "        attribute: dose\n"
        '        text: "Doses: {list}."\n',
    )
    problems = problems_of(tmp_path, {"r.yaml": text})
    assert sorted((split_where(p.where)[1], p.message) for p in problems) == [
        (line_of(text, "attribute: dose"), "'exposure' has no attribute 'dose'"),
        (line_of(text, "fact: exposures"), "unknown fact type 'exposures'"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Also on record: {lsit}.", id="misspelt-placeholder"),
        pytest.param("Also on record: {list.", id="unclosed-brace"),
        pytest.param("Also on record: {}.", id="positional-field"),
    ],
)
def test_section_text_placeholders_are_checked(tmp_path: Path, text: str) -> None:
    """Regression (card-template checks, now cds.cards.checks): a section's text is never parsed at
    compile time. A misspelt placeholder renders as "not stated"; an unclosed brace or
    a positional field raises in render_cards (ValueError), failing the first request
    whose session derives the fact instead of the rules check."""
    rules = with_section("exposure", "drug", text)
    problems = problems_of(tmp_path, {"r.yaml": rules})
    # at the section's text, or (a misspelt name) where a rule must supply it
    assert any(
        split_where(p.where)[1] == line_of(rules, "text: ") or "lsit" in p.message for p in problems
    ), [str(p) for p in problems]


def test_summary_of_139_characters_is_accepted(tmp_path: Path) -> None:
    summary = "About {drug} " + "x" * 126
    assert len(summary) == 139
    compiled = compile_texts(tmp_path, {"r.yaml": GOOD.replace("About {drug}", summary)})
    assert compiled.cards["drug_card"].summary == summary


def test_column_is_that_of_the_offending_key(tmp_path: Path) -> None:
    text = GOOD.replace("          draft: false\n", "          draft: false\n          dosage: 3\n")
    (problem,) = problems_of(tmp_path, {"r.yaml": text})
    _, line, col = split_where(problem.where)
    assert col == column_of(text, line, "dosage")


def test_capitalised_unknown_key_points_at_its_line(tmp_path: Path) -> None:
    # A capitalised typo is as likely as any other. The compiler drops capitalised loc
    # parts (meant for pydantic union class names) and so points at the rule's first line.
    text = GOOD.replace("    priority: 10\n", "    Priority: 10\n")
    (problem,) = problems_of(tmp_path, {"r.yaml": text})
    assert "Extra inputs" in problem.message
    assert split_where(problem.where)[1] == line_of(text, "Priority: 10"), str(problem)


def test_capitalised_card_name_problem_points_at_its_line(tmp_path: Path) -> None:
    text = GOOD + '  Spare:\n    indicator: info\n    summary: "x"\n    detail: "Detail text"\n'
    (problem,) = problems_of(tmp_path, {"r.yaml": text})
    assert "at least 5 characters" in problem.message
    assert split_where(problem.where)[1] == line_of(text, 'summary: "x"'), str(problem)


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    text = GOOD.replace("title: A card about an exposure", "title: A card: about an exposure")
    (problem,) = problems_of(tmp_path, {"r.yaml": text})
    assert problem.message.startswith("YAML syntax")
    path, line, _ = split_where(problem.where)
    assert path == str(tmp_path / "r.yaml")
    assert line == line_of(text, "title: A card: about")


def test_duplicate_yaml_key_is_located(tmp_path: Path) -> None:
    text = GOOD.replace("    priority: 10\n", "    priority: 10\n    title: Another title\n")
    (problem,) = problems_of(tmp_path, {"r.yaml": text})
    assert "duplicate key 'title'" in problem.message
    assert split_where(problem.where)[1] == line_of(text, "title: Another title")


def test_duplicate_rule_id_across_files_points_at_the_second(tmp_path: Path) -> None:
    other = """\
    statement: A second file reusing a rule id.
    rules:
      - id: second-file-rule
        title: Unrelated rule
        when:
          - fact: med
            as: m
        then:
          derive: {fact: other, with: {drug: m.drug}}
      - id: exposure
        title: Same id as in a.yaml
        when:
          - fact: med
            as: m
        then:
          derive: {fact: other, with: {drug: m.drug}}
    """
    problems = problems_of(tmp_path, {"a.yaml": GOOD, "b.yaml": other})
    (problem,) = [p for p in problems if "already used" in p.message]
    path, line, _ = split_where(problem.where)
    assert path == str(tmp_path / "b.yaml")
    assert line == line_of(other, "- id: exposure")
    assert str(tmp_path / "a.yaml") in problem.message


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = GOOD.replace("          draft: false\n", "          dosage: 3\n").replace(
        "        template: drug_card\n", "        template: nope\n"
    )
    problems = problems_of(tmp_path, {"r.yaml": text})
    lines = sorted(split_where(p.where)[1] for p in problems)
    assert lines == sorted([line_of(text, "dosage: 3"), line_of(text, "template: nope")])


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("          drug: e.drug\n", "          drug: e.drgu\n", "drug: e.drgu"),
        ("          day: m.day\n", "          day: m.dya\n", "day: m.dya"),
        ("          day: m.day\n", "          day: m.day - m.dya\n", "day: m.day - m.dya"),
    ],
    ids=["card value", "derived value", "second term of a difference"],
)
def test_misspelt_attribute_in_with_is_a_problem(
    tmp_path: Path, old: str, new: str, needle: str
) -> None:
    # In 'where' an unknown attribute is an error; in 'with' it silently resolves to
    # nothing and the card shows "not stated" for ever.
    text = GOOD.replace(old, new)
    problems = problems_of(tmp_path, {"r.yaml": text})
    assert [split_where(p.where)[1] for p in problems] == [line_of(text, needle)]


# --- what compiles, and what the compiled rules mean --------------------------------

TWO_TESTS = (
    """\
statement: One condition with several tests.
rules:
  - id: both
    title: A draft of drug a
    when:
      - fact: med
        as: m
        where:
          draft: true
          drug: a
    then:
      card:
        template: drug_card
        with:
          drug: m.drug
"""
    + CARDS
)


def test_condition_with_several_tests_compiles_to_and(tmp_path: Path) -> None:
    compiled = compile_texts(tmp_path, {"r.yaml": TWO_TESTS})
    conditions = compiled.definition["both"]["all"]
    assert conditions[1] == {"m": {"$and": [{"fact": "med"}, {"draft": True}, {"drug": "a"}]}}
    for condition in conditions:
        (expr,) = condition.values()
        assert len(expr) == 1, f"multi-key condition object {expr}"


def test_condition_with_two_tests_checks_both(tmp_path: Path) -> None:
    engine = RuleEngine(compile_texts(tmp_path, {"r.yaml": TWO_TESTS}))
    facts = [
        {"fact": "med", "drug": "a", "draft": False},  # only the second test
        {"fact": "med", "drug": "b", "draft": True},  # only the first test
        {"fact": "med", "drug": "c", "draft": False},  # neither
    ]
    assert engine.evaluate(facts).outcomes == []
    for fact in facts:
        assert engine.evaluate([fact]).outcomes == []
    hit = engine.evaluate([*facts, {"fact": "med", "drug": "a", "draft": True}])
    assert [(o.rule_id, dict(o.values)) for o in hit.outcomes] == [("both", {"drug": "a"})]


OPERATORS = (
    """\
statement: Every kind of test a where clause offers.
rules:
  - id: op-eq
    title: equal
    when: [{fact: med, as: m, where: {day: 5}}]
    then: {card: {template: drug_card, with: {drug: m.drug}}}
  - id: op-ne
    title: not equal
    when: [{fact: med, as: m, where: {day: {ne: 5}}}]
    then: {card: {template: drug_card, with: {drug: m.drug}}}
  - id: op-range
    title: within a range
    when: [{fact: med, as: m, where: {day: {gt: 2, lte: 7}}}]
    then: {card: {template: drug_card, with: {drug: m.drug}}}
  - id: op-lt-gte
    title: lt and gte
    when: [{fact: med, as: m, where: {day: {gte: 1, lt: 4}}}]
    then: {card: {template: drug_card, with: {drug: m.drug}}}
  - id: op-in
    title: one of
    when: [{fact: med, as: m, where: {drug: {in: [a, c]}}}]
    then: {card: {template: drug_card, with: {drug: m.drug}}}
  - id: op-in-one
    title: one of one
    when: [{fact: med, as: m, where: {drug: {in: [b]}}}]
    then: {card: {template: drug_card, with: {drug: m.drug}}}
  - id: op-exists
    title: has a dose
    when: [{fact: med, as: m, where: {dose: {exists: true}}}]
    then: {card: {template: drug_card, with: {drug: m.drug}}}
  - id: op-not-exists
    title: has no dose
    when: [{fact: med, as: m, where: {dose: {exists: false}}}]
    then: {card: {template: drug_card, with: {drug: m.drug}}}
  - id: op-config
    title: within the configured window
    when: [{fact: med, as: m, where: {day: {lte: config.window}}}]
    then: {card: {template: drug_card, with: {drug: m.drug}}}
  - id: op-join-offset
    title: a symptom within the window after the drug
    when:
      - {fact: med, as: m}
      - {fact: symptom, as: s, where: {day: {gt: m.day, lte: m.day + config.window}}}
    then: {card: {template: drug_card, with: {drug: m.drug}}}
"""
    + CARDS
)

PREDICATES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "op-eq": lambda m: m["day"] == 5,
    "op-ne": lambda m: m["day"] != 5,
    "op-range": lambda m: 2 < m["day"] <= 7,
    "op-lt-gte": lambda m: 1 <= m["day"] < 4,
    "op-in": lambda m: m["drug"] in {"a", "c"},
    "op-in-one": lambda m: m["drug"] == "b",
    "op-exists": lambda m: m.get("dose") is not None,
    "op-not-exists": lambda m: m.get("dose") is None,
    "op-config": lambda m: m["day"] <= 5,
}


def test_compiled_tests_mean_what_they_say(tmp_path: Path) -> None:
    engine = RuleEngine(compile_texts(tmp_path, {"r.yaml": OPERATORS}))
    rng = random.Random(20261101)
    for _ in range(150):
        med: dict[str, Any] = {
            "fact": "med",
            "drug": rng.choice("abcd"),
            "day": rng.randint(0, 9),
            "dose": rng.choice([None, 2.5]),
        }
        symptom_day = rng.randint(0, 15)
        result = engine.evaluate([med, {"fact": "symptom", "day": symptom_day}])
        fired = sorted(o.rule_id for o in result.outcomes)
        expected = [rule for rule, test in PREDICATES.items() if test(med)]
        if med["day"] < symptom_day <= med["day"] + 5:
            expected.append("op-join-offset")
        assert fired == sorted(expected), (med, symptom_day)


STRATA = (
    """\
statement: Negation over derived facts in strata.
rules:
  - id: exposure
    title: A taken drug is an exposure
    when: [{fact: med, as: m, where: {draft: false}}]
    then: {derive: {fact: exposure, with: {drug: m.drug}}}
  - id: link
    title: A symptom while exposed
    when:
      - {fact: exposure, as: e}
      - {fact: symptom, as: s}
    then: {derive: {fact: link, with: {drug: e.drug}}}
  - id: late-link
    title: Another producer of link, itself after a negation
    when:
      - {fact: med, as: m}
      - {absent: exposure}
    then: {derive: {fact: link, with: {drug: m.drug}}}
  - id: unlinked
    title: An exposure with no link
    when:
      - {fact: exposure, as: e}
      - {absent: link, where: {drug: e.drug}}
    then: {derive: {fact: unlinked, with: {drug: e.drug}}}
  - id: uses-unlinked
    title: A positive match on a fact derived after a negation
    when: [{fact: unlinked, as: u}]
    then: {card: {template: drug_card, with: {drug: u.drug}}}
  - id: base-negation
    title: Negation over a base fact needs no later stage
    when:
      - {fact: symptom, as: s}
      - {absent: med}
    then: {card: {template: drug_card, with: {drug: s.region}}}
"""
    + CARDS
)


def test_absent_over_derived_fact_runs_after_its_producers(tmp_path: Path) -> None:
    compiled = compile_texts(tmp_path, {"r.yaml": STRATA})
    stage = {rule_id: rule.stage for rule_id, rule in compiled.rules.items()}
    assert stage["late-link"] > stage["exposure"]
    for producer in ("link", "late-link"):
        assert stage["unlinked"] > stage[producer]
    assert stage["link"] >= stage["exposure"]
    assert stage["uses-unlinked"] >= stage["unlinked"]
    assert stage["base-negation"] == 1
    assert compiled.stages == max(stage.values())
    for rule_id, rule in compiled.rules.items():
        gate = compiled.definition[rule_id]["all"][0]
        assert gate == {"gate__": {"$and": [{"fact": GATE_FACT}, {"stage": rule.stage}]}}
    # every stage is closed by an end rule firing after all of the stage's rules
    for k in range(1, compiled.stages + 1):
        end = compiled.definition[f"__end__{k}"]
        assert end["all"] == [{"gate__": {"$and": [{"fact": GATE_FACT}, {"stage": k}]}}]
        assert end["pri"] > max(
            r["pri"]
            for n, r in compiled.definition.items()
            if "pri" in r and not n.startswith("__")
        )


@pytest.mark.parametrize(
    ("rules", "cyclic"),
    [
        (
            """\
            - id: self-negation
              title: Derives what it needs absent
              when:
                - {fact: med, as: m}
                - {absent: flag}
              then: {derive: {fact: flag, with: {drug: m.drug}}}
            """,
            ["self-negation"],
        ),
        (
            """\
            - id: ping
              title: Needs no pong
              when:
                - {fact: med, as: m}
                - {absent: pong}
              then: {derive: {fact: ping, with: {drug: m.drug}}}
            - id: pong
              title: Follows a ping
              when:
                - {fact: ping, as: p}
              then: {derive: {fact: pong, with: {drug: p.drug}}}
            """,
            ["ping", "pong"],
        ),
    ],
)
def test_negation_cycle_is_reported(tmp_path: Path, rules: str, cyclic: list[str]) -> None:
    text = (
        "statement: A file with a negation cycle.\nrules:\n"
        + "\n".join("  " + line for line in dedent(rules).splitlines())
        + "\n"
    )
    problems = problems_of(tmp_path, {"r.yaml": text})
    cycle = [p for p in problems if "negation cycle" in p.message]
    assert sorted(split_where(p.where)[1] for p in cycle) == sorted(
        line_of(text, f"- id: {rule_id}") for rule_id in cyclic
    )


def test_positive_recursion_is_no_cycle(tmp_path: Path) -> None:
    text = """\
    statement: Positive recursion needs no strata.
    rules:
      - id: seed
        title: Seed a chain
        when: [{fact: med, as: m}]
        then: {derive: {fact: chain, with: {drug: m.drug}}}
      - id: grow
        title: Chain on itself
        when: [{fact: chain, as: c}, {fact: symptom, as: s, where: {region: c.drug}}]
        then: {derive: {fact: chain, with: {drug: s.region}}}
    """
    compiled = compile_texts(tmp_path, {"r.yaml": text})
    assert compiled.stages == 1


def test_deriving_a_base_fact_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("        fact: exposure\n", "        fact: med\n")
    problems = problems_of(tmp_path, {"r.yaml": text})
    (problem,) = [p for p in problems if "base fact" in p.message]
    assert split_where(problem.where)[1] == line_of(text, "fact: med", 2)


# --- the bundled rules --------------------------------------------------------------


def test_bundled_rules_compile_without_problems(rules_dir: Path) -> None:
    base = load_rulebase(rules_dir)  # raises RulesError listing any problem
    try:
        compiled = base.compiled
        written = {
            rule["id"]
            for path in rule_files(rules_dir)
            for rule in (yaml.safe_load(path.read_text(encoding="utf-8")).get("rules") or [])
        }
        assert written, "no rules found in the bundled rules directory"
        assert set(compiled.rules) == written
        assert written <= set(compiled.definition)
        assert base.engine.name in live_rulesets()
        for rule in compiled.rules.values():
            assert rule.card_template is None or rule.card_template in compiled.cards
            assert rule.file.endswith(".yaml")
        # no engine regexes: each reload of a regex rule leaks memory (DURABLE_RULES.md)
        assert "$mt" not in json.dumps(compiled.definition)
        assert "$imt" not in json.dumps(compiled.definition)
        # a rule's absent: condition waits for every rule deriving that fact
        stage = {rule_id: rule.stage for rule_id, rule in compiled.rules.items()}
        links = ("link.onset-on-current-drug", "link.onset-on-stopped-drug")
        differentials = (
            "differential.coded-akathisia",
            "differential.restlessness-not-relieved",
            "differential.inner-restlessness-not-relieved",
            "differential.skin-lesion-described",
            "differential.skin-lesion-coded",
        )
        for card_rule in (
            "dose-review.draft-order",
            "dose-review.dose-increase",
            "dose-review.current-drug",
            "new-drug.added-to-combination",
            "new-drug.added-antipsychotic",
            "observation.no-time-link",
            "observation.new-drug",
            "observation.stopped-drug",
        ):
            assert all(stage[card_rule] > stage[d] for d in differentials), card_rule
        for card_rule in (
            "dose-review.dose-increase",
            "observation.no-time-link",
            "observation.new-drug",
        ):
            assert all(stage[card_rule] > stage[link] for link in links), card_rule
        assert stage["observation.no-time-link"] > stage["dose-change.increase"]
        assert stage["dose-review.draft-order"] > stage["dose-change.reduction"]
        assert stage["observation.new-drug"] > stage["combination.antipsychotic-antidepressant"]
        assert base.version.startswith(
            str(yaml.safe_load((rules_dir / "config.yaml").read_text(encoding="utf-8"))["version"])
            + "+"
        )
    finally:
        base.close()


def test_bundled_rules_compile_with_the_base_fact_schema(rules_dir: Path) -> None:
    config = load_located_yaml(rules_dir / "config.yaml")
    files = [load_located_yaml(p) for p in rule_files(rules_dir)]
    compiled = compile_rules(config, files, FACT_SCHEMA)
    for fact_type, attrs in FACT_SCHEMA.items():
        assert dict(compiled.fact_schema[fact_type]) == attrs
    derived = {r.derive_fact for r in compiled.rules.values() if r.derive_fact}
    assert derived == set(compiled.fact_schema) - set(FACT_SCHEMA)


def test_source_id_defined_twice_is_a_problem(tmp_path: Path) -> None:
    def with_source(label: str) -> str:
        return f"""\
        statement: A file defining a source.
        sources:
          - id: shared-source
            label: "{label}"
            citation: "Someone et al. A paper. Journal. 2020;1:1-2"
            url: https://example.org/paper
        rules: []
        """

    second = with_source("Second definition")
    problems = problems_of(tmp_path, {"a.yaml": with_source("First"), "b.yaml": second})
    (problem,) = [p for p in problems if "defined twice" in p.message]
    path, line, _ = split_where(problem.where)
    assert path == str(tmp_path / "b.yaml")
    assert line == line_of(second, "- id: shared-source")
    assert "shared-source" in problem.message


@pytest.mark.parametrize(
    ("suggestion", "missing"),
    [
        ("{kind: reduce-dose, label: Lower it, fraction: 0.5}", "current_mg, mg_per_day, order"),
        (
            "{kind: reduce-dose, label: Lower it, fraction: 0.5, order: draft, dose: new_mg,"
            " current_dose: null}",
            "draft, new_mg",
        ),
    ],
)
def test_suggestion_inputs_the_rule_does_not_supply_are_located(
    tmp_path: Path, suggestion: str, missing: str
) -> None:
    text = GOOD.replace(
        '    detail: "Something about {drug}."\n',
        f'    detail: "Something about {{drug}}."\n    suggestion: {suggestion}\n',
    ).replace(
        "        with:\n          drug: e.drug\n", "        with:  # card\n          drug: e.drug\n"
    )
    problems = problems_of(tmp_path, {"r.yaml": text})
    (problem,) = [p for p in problems if "needs values for" in p.message]
    assert problem.message == f"card 'drug_card' needs values for: {missing}"
    assert split_where(problem.where)[1] == line_of(text, "with:  # card")
