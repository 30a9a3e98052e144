"""render_cards with the bundled rules' templates: CDS Hooks 2.0 cards and suggestions."""

from __future__ import annotations

import copy
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.cards import MAX_SUMMARY_LENGTH, RenderContext, render_cards
from cds.cards.render import RULE_EXTENSION, VERSION_EXTENSION
from cds.engine import Outcome
from cds.facts import mg_per_day
from cds.rulebase import RuleBase, load_rulebase
from cds.settings import bundled_rules_dir
from tests.conftest import load_example
from tests.facts.fhir_builders import RXNORM, dose, medication_request, quantity

OVERRIDE_SYSTEM = "urn:restless-cds:override-reason"
DRAFT_REF = "MedicationRequest/draft-amisulpride-800"
OVERRIDE_CODES = [
    "already-aware",
    "judged-psychiatric",
    "benefit-outweighs-risk",
    "not-restless-syndrome",
]


def example_draft() -> dict[str, Any]:
    example = load_example("restless-back-amisulpride.json")
    draft: dict[str, Any] = example["context"]["draftOrders"]["entry"][0]["resource"]
    return draft


def context(bundled_rules: RuleBase, drafts: Iterable[Mapping[str, Any]] = ()) -> RenderContext:
    compiled = bundled_rules.compiled
    return RenderContext(
        templates=compiled.cards,
        sources=compiled.sources,
        rules_version=bundled_rules.version,
        source_label="restless-cds",
        override_system=OVERRIDE_SYSTEM,
        draft_orders={f"MedicationRequest/{d['id']}": d for d in drafts},
    )


def order_values(**changes: Any) -> dict[str, Any]:
    """What rule dose-review.draft-order passes for the restless back case."""
    values: dict[str, Any] = {
        "drug": "amisulpride",
        "drug_class": "antipsychotic",
        "current_mg": 600.0,
        "mg_per_day": 800.0,
        "order": DRAFT_REF,
        "region": "back",
        "basis": "worse at rest, relieved by moving",
        "complaint": "Itching and ant-crawling sensation in the back when lying down",
        "days": 14,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def order_outcome(**changes: Any) -> Outcome:
    return Outcome("dose-review.draft-order", "dose_review_order", order_values(**changes))


def review_outcome(**changes: Any) -> Outcome:
    values = order_values(**changes)
    for key in ("mg_per_day", "order"):
        values.pop(key, None)
    return Outcome("dose-review.current-drug", "dose_review", values)


def observation_outcome(**changes: Any) -> Outcome:
    values = {k: order_values(**changes)[k] for k in ("drug", "drug_class", "region", "basis")}
    values["complaint"] = "back itching"
    return Outcome("observation.no-time-link", "observation", values)


def doses(resource: Mapping[str, Any]) -> list[Any]:
    return [
        rate.get("doseQuantity", {}).get("value")
        for dosage in resource["dosageInstruction"]
        for rate in dosage["doseAndRate"]
    ]


def stated_target(suggestion: Mapping[str, Any]) -> float:
    (action,) = suggestion["actions"]
    match = re.search(r"to ([\d.]+) mg/day", action["description"])
    assert match, action["description"]
    return float(match.group(1))


def walk(value: Any) -> Iterable[Any]:
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# --- the card -----------------------------------------------------------------------------


def test_restless_back_dose_review_card(bundled_rules: RuleBase) -> None:
    (card,) = render_cards([order_outcome()], context(bundled_rules, [example_draft()]))
    assert card["summary"] == "Restless back on amisulpride: review the dose before raising it"
    assert card["indicator"] == "warning"
    assert "current dose 600 mg/day; this order 800 mg/day" in card["detail"]
    assert "began 14 days after amisulpride" in card["detail"]
    assert card["detail"] == card["detail"].strip()
    assert card["source"] == {"label": "restless-cds"}
    assert [link["url"] for link in card["links"]] == [
        "https://doi.org/10.5152/pcp.2022.22441",
        "https://doi.org/10.1016/j.sleep.2014.03.025",
        "https://doi.org/10.1186/s12888-021-03433-6",
    ]
    assert all(link["type"] == "absolute" and link["label"] for link in card["links"])
    assert card["selectionBehavior"] == "at-most-one"
    assert [s["label"] for s in card["suggestions"]] == [
        "Keep the current dose (600 mg/day)",
        "Order a lower dose instead (about 400 mg/day)",
    ]


def test_card_uuid_is_fresh_per_card(bundled_rules: RuleBase) -> None:
    ctx = context(bundled_rules, [example_draft()])
    outcomes = [order_outcome(region="back"), order_outcome(region="legs")]
    cards = render_cards(outcomes, ctx) + render_cards(outcomes, ctx)
    ids = [c["uuid"] for c in cards] + [s["uuid"] for c in cards for s in c["suggestions"]]
    assert len(set(ids)) == len(ids) == 4 + 8
    for value in ids:
        assert str(uuid.UUID(value)) == value


def test_rule_id_and_rules_version_extension(bundled_rules: RuleBase) -> None:
    cards = render_cards([order_outcome(), observation_outcome()], context(bundled_rules))
    assert [c["extension"] for c in cards] == [
        {RULE_EXTENSION: "dose-review.draft-order", VERSION_EXTENSION: bundled_rules.version},
        {RULE_EXTENSION: "observation.no-time-link", VERSION_EXTENSION: bundled_rules.version},
    ]
    assert bundled_rules.version.startswith("2026.11.2+")


def test_override_reasons_are_codings(bundled_rules: RuleBase) -> None:
    cards = render_cards(
        [order_outcome(), review_outcome(region="legs"), observation_outcome(region="arms")],
        context(bundled_rules),
    )
    for card in cards:
        reasons = card["overrideReasons"]
        assert [r["code"] for r in reasons] == OVERRIDE_CODES
        assert all(set(r) == {"system", "code", "display"} for r in reasons)
        assert {r["system"] for r in reasons} == {OVERRIDE_SYSTEM}
        assert all(len(r["display"]) >= 3 for r in reasons)


def test_cards_have_no_nulls_or_empty_lists(bundled_rules: RuleBase) -> None:
    outcomes = [order_outcome(), review_outcome(region="legs"), observation_outcome(region="arms")]
    for card in render_cards(outcomes, context(bundled_rules, [example_draft()])):
        for value in walk(card):
            assert value is not None
            assert value not in ([], {})


def test_missing_dose_says_it_could_not_be_read(bundled_rules: RuleBase) -> None:
    (card,) = render_cards([review_outcome(current_mg=None)], context(bundled_rules))
    assert "unknown (the dose could not be read from the order)" in card["detail"]


def test_record_text_cannot_inject_markup_into_the_detail(bundled_rules: RuleBase) -> None:
    hostile = "<script>alert(1)</script> [click](https://evil.example) **loud**"
    (card,) = render_cards([review_outcome(complaint=hostile)], context(bundled_rules))
    assert "<script>" not in card["detail"]
    assert "](https://evil" not in card["detail"]
    assert r"\<script\>" in card["detail"]
    assert "**amisulpride**" in card["detail"]  # the template's own Markdown is kept


# --- summary ------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [order_outcome, review_outcome, observation_outcome])
def test_long_summary_is_truncated_with_an_ellipsis(bundled_rules: RuleBase, make: Any) -> None:
    long_drug = "amisulpride " + "hydrochloride " * 20
    (card,) = render_cards([make(drug=long_drug)], context(bundled_rules))
    assert len(card["summary"]) <= MAX_SUMMARY_LENGTH < 140
    assert card["summary"].endswith("…")
    assert not card["summary"][:-1].endswith(" ")


def test_summary_at_the_limit_is_kept(bundled_rules: RuleBase) -> None:
    fixed = len("Restless back on : review the dose before raising it")
    drug = "x" * (MAX_SUMMARY_LENGTH - fixed)
    (card,) = render_cards([order_outcome(drug=drug)], context(bundled_rules))
    assert len(card["summary"]) == MAX_SUMMARY_LENGTH
    assert not card["summary"].endswith("…")


# --- one card per finding -----------------------------------------------------------------


def test_same_finding_is_one_card(bundled_rules: RuleBase) -> None:
    first = order_outcome(complaint="back itching when lying down")
    again = order_outcome(complaint="crawling in the lumbar region", days=20)
    cards = render_cards([first, again], context(bundled_rules))
    assert len(cards) == 1
    assert "back itching when lying down" in cards[0]["detail"]


def test_different_regions_or_templates_are_different_cards(bundled_rules: RuleBase) -> None:
    outcomes = [
        order_outcome(region="back"),
        order_outcome(region="legs"),
        order_outcome(region="back", drug="olanzapine"),
        observation_outcome(region="back"),
    ]
    assert len(render_cards(outcomes, context(bundled_rules))) == 4


# --- suggestions --------------------------------------------------------------------------


def test_keep_current_and_lower_dose_suggestions(bundled_rules: RuleBase) -> None:
    draft = example_draft()
    before = copy.deepcopy(draft)
    (card,) = render_cards([order_outcome()], context(bundled_rules, [draft]))
    keep, lower = card["suggestions"]
    for suggestion, per_dose, daily in ((keep, 300, 600), (lower, 200, 400)):
        (action,) = suggestion["actions"]
        assert action["type"] == "update"
        resource = action["resource"]
        assert resource["id"] == "draft-amisulpride-800"
        assert resource["status"] == "draft"
        assert resource["medicationCodeableConcept"] == draft["medicationCodeableConcept"]
        quantity_ = resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
        assert quantity_ == {
            "value": per_dose,
            "unit": "mg",
            "system": "http://unitsofmeasure.org",
            "code": "mg",
        }
        assert isinstance(quantity_["value"], int)
        assert resource["dosageInstruction"][0]["timing"] == draft["dosageInstruction"][0]["timing"]
        # the free text said "400 mg twice daily": it must not survive beside the new dose
        assert "text" not in resource["dosageInstruction"][0]
        assert f"from 800 mg/day to {daily} mg/day" in action["description"]
        MedicationRequest.model_validate(resource)
    assert draft == before  # the draft in the request is never modified


def test_no_keep_current_when_the_draft_does_not_raise_the_dose(bundled_rules: RuleBase) -> None:
    draft = medication_request(
        id="d", status="draft", codes=[(RXNORM, "46303")], dosages=[dose(300, per=(2, 1, "d"))]
    )
    for current in (600.0, 900.0, None):
        outcome = order_outcome(order="MedicationRequest/d", mg_per_day=600.0, current_mg=current)
        (card,) = render_cards([outcome], context(bundled_rules, [draft]))
        (lower,) = card["suggestions"]
        assert lower["label"] == "Order a lower dose instead (about 400 mg/day)"
        assert doses(lower["actions"][0]["resource"]) == [200]


def test_lower_dose_fraction_comes_from_config(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(bundled_rules_dir(), rules)
    config = rules / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert "dose_reduction_fraction: 0.333" in text
    config.write_text(
        text.replace("dose_reduction_fraction: 0.333", "dose_reduction_fraction: 0.5")
    )
    edited = load_rulebase(rules)
    try:
        (card,) = render_cards([order_outcome()], context(edited, [example_draft()]))
    finally:
        edited.close()
    _, lower = card["suggestions"]
    assert lower["label"] == "Order a lower dose instead (about 300 mg/day)"
    assert doses(lower["actions"][0]["resource"]) == [150]


def test_gram_doses_are_scaled_in_grams(bundled_rules: RuleBase) -> None:
    draft = medication_request(
        id="d", status="draft", codes=[(RXNORM, "46303")], dosages=[dose(0.4, "g", per=(2, 1, "d"))]
    )
    (card,) = render_cards(
        [order_outcome(order="MedicationRequest/d")], context(bundled_rules, [draft])
    )
    keep, lower = card["suggestions"]
    assert doses(keep["actions"][0]["resource"]) == [pytest.approx(0.3)]
    assert doses(lower["actions"][0]["resource"]) == [pytest.approx(0.2)]


def test_dose_range_is_scaled_at_both_ends(bundled_rules: RuleBase) -> None:
    instruction = dose(0, per=(2, 1, "d"))
    instruction["doseAndRate"] = [{"doseRange": {"low": quantity(200), "high": quantity(400)}}]
    draft = medication_request(
        id="d", status="draft", codes=[(RXNORM, "46303")], dosages=[instruction]
    )
    (card,) = render_cards(
        [order_outcome(order="MedicationRequest/d")], context(bundled_rules, [draft])
    )
    keep, _ = card["suggestions"]
    dose_range = keep["actions"][0]["resource"]["dosageInstruction"][0]["doseAndRate"][0][
        "doseRange"
    ]
    assert (dose_range["low"]["value"], dose_range["high"]["value"]) == (150, 300)


def test_no_suggestion_for_a_non_mass_dose(bundled_rules: RuleBase) -> None:
    draft = medication_request(
        id="d", status="draft", codes=[(RXNORM, "46303")], dosages=[dose(2, "tablet", code="BID")]
    )
    (card,) = render_cards(
        [order_outcome(order="MedicationRequest/d")], context(bundled_rules, [draft])
    )
    assert "suggestions" not in card
    assert "selectionBehavior" not in card
    assert card["overrideReasons"]  # the card itself still stands


@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param(order_outcome(order="MedicationRequest/elsewhere"), id="order-not-a-draft"),
        pytest.param(order_outcome(mg_per_day=None), id="unknown-ordered-dose"),
        pytest.param(order_outcome(mg_per_day=0.0), id="zero-ordered-dose"),
        pytest.param(review_outcome(), id="template-without-suggestion"),
        pytest.param(observation_outcome(), id="observation"),
    ],
)
def test_suggestions_only_for_a_draft_order_in_the_request(
    bundled_rules: RuleBase, outcome: Outcome
) -> None:
    (card,) = render_cards([outcome], context(bundled_rules, [example_draft()]))
    assert "suggestions" not in card
    assert "selectionBehavior" not in card


def test_no_suggestions_without_draft_orders(bundled_rules: RuleBase) -> None:
    (card,) = render_cards([order_outcome()], context(bundled_rules))
    assert "suggestions" not in card


def test_keep_current_restores_the_exact_current_dose(bundled_rules: RuleBase) -> None:
    """Regression: each scaled dose is rounded to 2 significant figures, so "keep the current
    dose" of venlafaxine 225 mg/day on a 300 mg draft writes 220 mg (round half-even)."""
    draft = medication_request(
        id="ven", status="draft", text="venlafaxine 300 mg", dosages=[dose(300, code="QD")]
    )
    outcome = order_outcome(
        drug="venlafaxine", order="MedicationRequest/ven", current_mg=225.0, mg_per_day=300.0
    )
    (card,) = render_cards([outcome], context(bundled_rules, [draft]))
    keep = card["suggestions"][0]
    assert keep["label"] == "Keep the current dose (225 mg/day)"
    assert doses(keep["actions"][0]["resource"]) == [225]


def _as_needed_draft() -> dict[str, Any]:
    ratio = {"numerator": quantity(800), "denominator": quantity(1, "d")}
    instruction = dose(200, per=None, asNeededBoolean=True, maxDosePerPeriod=ratio)
    return medication_request(
        id="prn", status="draft", codes=[(RXNORM, "46303")], dosages=[instruction]
    )


@pytest.mark.parametrize(
    ("draft", "values"),
    [
        pytest.param(example_draft(), {}, id="restless-back"),
        pytest.param(
            medication_request(
                id="d", status="draft", codes=[(RXNORM, "51272")], dosages=[dose(100, code="TID")]
            ),
            {
                "drug": "quetiapine",
                "order": "MedicationRequest/d",
                "mg_per_day": 300.0,
                "current_mg": 150.0,
            },
            id="three-times-a-day",
        ),
        pytest.param(example_draft(), {"current_mg": None}, id="lower-from-the-ordered-dose"),
        pytest.param(
            _as_needed_draft(), {"order": "MedicationRequest/prn"}, id="as-needed-maximum"
        ),
    ],
)
def test_suggested_order_gives_the_stated_daily_dose(
    bundled_rules: RuleBase, draft: dict[str, Any], values: dict[str, Any]
) -> None:
    """Read back with the service's own mg_per_day, each suggested order must give the
    daily dose its description states.

    Regression (per-dose rounding to 2 significant figures): lower-from-the-ordered-dose states
    530 mg/day but writes 260 mg twice a day (520 mg/day); three-times-a-day states
    100 mg/day but writes 33 mg three times a day (99 mg/day).
    Regression (as-needed-maximum): for an as-needed order mg_per_day is its maxDosePerPeriod,
    which the suggestion leaves unchanged, so accepting it lowers nothing.
    """
    (card,) = render_cards([order_outcome(**values)], context(bundled_rules, [draft]))
    assert card["suggestions"]
    for suggestion in card["suggestions"]:
        resource = MedicationRequest.model_validate(suggestion["actions"][0]["resource"])
        daily = mg_per_day(resource.dosageInstruction)
        assert daily == pytest.approx(stated_target(suggestion), rel=1e-3)


def test_non_integer_values_show_two_decimals(bundled_rules: RuleBase) -> None:
    outcome = order_outcome(current_mg=412.5, mg_per_day=1234.5678, order="elsewhere")
    (card,) = render_cards([outcome], context(bundled_rules))
    assert "current dose 412.5 mg/day; this order 1234.57 mg/day" in card["detail"]
