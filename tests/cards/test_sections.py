"""Card ``sections``: paragraphs the bundled templates add when the session derived facts
of a type (``RenderContext.derived``), listing one attribute of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from cds.cards import RenderContext, render_cards
from cds.engine import Outcome
from cds.rulebase import RuleBase

ALSO_ON_RECORD = (
    "**Also on record:** {}. These are secondary causes of restless legs; address them as well."
)
HIGHER_RISK = (
    "**Higher risk:** an antipsychotic and an antidepressant ({}) are given together; "
    "restless syndromes are reported more often with the combination (Chen et al. 2021)."
)
VALUES = {
    "drug": "amisulpride",
    "drug_class": "antipsychotic",
    "current_mg": 600.0,
    "mg_per_day": 800.0,
    "order": "MedicationRequest/elsewhere",
    "region": "back",
    "basis": "worse at rest, relieved by moving",
    "complaint": "back itching when lying down",
    "days": 14,
}
"""Values every bundled RLS template needs (extra ones are ignored)."""

SECTIONED_TEMPLATES = [
    "dose_review_order",
    "dose_review_increase",
    "dose_review",
    "new_drug_review",
    "observation",
    "observation_new_drug",
    "observation_stopped",
]


def context(
    bundled_rules: RuleBase, derived: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
) -> RenderContext:
    compiled = bundled_rules.compiled
    ctx = RenderContext(
        templates=compiled.cards,
        sources=compiled.sources,
        rules_version=bundled_rules.version,
        source_label="restless-cds",
        override_system="urn:restless-cds:override-reason",
        draft_orders={},
    )
    if derived is None:
        return ctx  # the default: no derived facts at all
    return dataclasses.replace(ctx, derived=derived)


def detail(
    bundled_rules: RuleBase,
    derived: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    template: str = "dose_review_order",
) -> str:
    outcome = Outcome(f"rule-for-{template}", template, VALUES)
    (card,) = render_cards([outcome], context(bundled_rules, derived))
    text: str = card["detail"]
    return text


def secondary(concept: str, source: str = "Condition/x") -> dict[str, Any]:
    return {"fact": "secondary_cause", "concept": concept, "source": source}


def combination(antidepressant: str, antipsychotic: str = "amisulpride") -> dict[str, Any]:
    return {
        "fact": "combination_risk",
        "antipsychotic": antipsychotic,
        "antidepressant": antidepressant,
    }


def paragraphs(text: str) -> list[str]:
    return text.split("\n\n")


def test_the_bundled_templates_have_their_sections(bundled_rules: RuleBase) -> None:
    cards = bundled_rules.compiled.cards
    for name in SECTIONED_TEMPLATES:
        assert [(s.fact, s.attribute) for s in cards[name].sections] == [
            ("combination_risk", "antidepressant"),
            ("secondary_cause", "concept"),
            ("low_ferritin", "reading"),  # labs: 50-labs.yaml
            ("low_transferrin_saturation", "reading"),
            ("ferritin_old", "reading"),
            ("ferritin_missing", "source"),
            ("kidney_failure", "reading"),
            ("pregnancy", "reading"),
        ], name
    assert cards["akathisia"].sections == []


def test_secondary_causes_are_listed_sorted_and_unique(bundled_rules: RuleBase) -> None:
    derived = {
        "secondary_cause": [
            secondary("Iron deficiency anaemia", "Condition/iron-1"),
            secondary("Chronic kidney disease", "Condition/ckd"),
            secondary("Iron deficiency anaemia", "Condition/iron-2"),
        ]
    }
    without = detail(bundled_rules)
    with_causes = detail(bundled_rules, derived)
    assert with_causes == without + "\n\n" + ALSO_ON_RECORD.format(
        "Chronic kidney disease, Iron deficiency anaemia"
    )


def test_listed_record_text_is_markdown_escaped(bundled_rules: RuleBase) -> None:
    derived = {
        "secondary_cause": [
            secondary("Pregnancy (third trimester)"),
            secondary("<script>alert(1)</script>"),
            secondary("[click](https://evil.example) **loud**"),
        ]
    }
    last = paragraphs(detail(bundled_rules, derived))[-1]
    # sorted on the raw values ("<" < "P" < "["), escaped after joining
    assert last == ALSO_ON_RECORD.format(
        r"\<script\>alert\(1\)\</script\>, Pregnancy \(third trimester\), "
        r"\[click\]\(https://evil.example\) \*\*loud\*\*"
    )
    assert "<script>" not in last
    assert last.startswith("**Also on record:**")  # the template's own Markdown is kept


def test_no_derived_facts_no_section(bundled_rules: RuleBase) -> None:
    text = detail(bundled_rules)
    assert "Also on record" not in text
    assert "Higher risk" not in text
    assert text == detail(bundled_rules, {})
    assert text.endswith("Advisory only: this card does not change\nthe order.")


@pytest.mark.parametrize(
    "derived",
    [
        pytest.param(
            {"temporal_link": [{"fact": "temporal_link", "drug": "amisulpride"}]},
            id="other-types-only",
        ),
        pytest.param({"secondary_cause": []}, id="empty-list"),
        pytest.param(
            {"secondary_cause": [{"fact": "secondary_cause", "source": "Condition/x"}]},
            id="without-the-attribute",
        ),
        pytest.param(
            {"exposure": [{"fact": "exposure", "concept": "Iron deficiency anaemia"}]},
            id="attribute-on-another-type",
        ),
    ],
)
def test_section_needs_its_fact_type_with_the_attribute(
    bundled_rules: RuleBase, derived: dict[str, list[dict[str, Any]]]
) -> None:
    assert detail(bundled_rules, derived) == detail(bundled_rules)


def test_combination_risk_names_the_antidepressants(bundled_rules: RuleBase) -> None:
    derived = {
        "combination_risk": [
            combination("sertraline"),
            combination("mirtazapine"),
            combination("sertraline", antipsychotic="olanzapine"),
        ]
    }
    assert paragraphs(detail(bundled_rules, derived))[-1] == HIGHER_RISK.format(
        "mirtazapine, sertraline"
    )


def test_sections_follow_the_template_order(bundled_rules: RuleBase) -> None:
    derived = {
        "secondary_cause": [secondary("Iron deficiency anaemia")],
        "combination_risk": [combination("sertraline")],
    }
    without = paragraphs(detail(bundled_rules))
    assert paragraphs(detail(bundled_rules, derived)) == [
        *without,
        HIGHER_RISK.format("sertraline"),
        ALSO_ON_RECORD.format("Iron deficiency anaemia"),
    ]


@pytest.mark.parametrize("template", SECTIONED_TEMPLATES)
def test_every_rls_template_shows_the_section(bundled_rules: RuleBase, template: str) -> None:
    derived = {"secondary_cause": [secondary("Iron deficiency anaemia")]}
    with_cause = detail(bundled_rules, derived, template)
    assert with_cause == detail(bundled_rules, None, template) + "\n\n" + ALSO_ON_RECORD.format(
        "Iron deficiency anaemia"
    )


def test_akathisia_card_has_no_section(bundled_rules: RuleBase) -> None:
    derived = {"secondary_cause": [secondary("Iron deficiency anaemia")]}
    values = {**VALUES, "complaint": "inner restlessness", "basis": "coded diagnosis"}
    outcome = Outcome("akathisia.on-provoking-drug", "akathisia", values)
    (card,) = render_cards([outcome], context(bundled_rules, derived))
    assert "Also on record" not in card["detail"]


def test_no_card_text_promises_a_suggestion_to_accept(bundled_rules: RuleBase) -> None:
    """Issue 14: a card may arrive without suggestions (no dose on the draft, no draft), so
    no template text tells the clinician to accept one."""
    for name, template in bundled_rules.compiled.cards.items():
        texts = [template.summary, template.detail, *(s.text for s in template.sections)]
        assert not any("accept" in text.lower() for text in texts), name


def test_published_case_reads_as_background_not_as_this_patients_dose(
    bundled_rules: RuleBase,
) -> None:
    """Issue 14: the case report's amisulpride doses are not offered as this patient's."""
    for name, template in bundled_rules.compiled.cards.items():
        if "Sun et al. 2022" in template.detail and "published" in template.detail:
            assert "Background, not a dose for this patient" in template.detail, name
            assert "g/day" not in template.detail, name
