"""render_cards with the bundled rules' templates: CDS Hooks 2.0 cards and suggestions."""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from cds.cards import MAX_SUMMARY_LENGTH, DraftProduct, RenderContext, placeholders, render_cards
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
        "dose_change": 200.0,
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


@pytest.mark.parametrize(
    ("mg_per_day", "dose_change", "words"),
    [
        (800.0, 200.0, "review the dose before raising it"),
        (600.0, 0.0, "review the dose before continuing it"),
        (600.001, 0.001, "review the dose before continuing it"),  # equal as shown
        (0.0, -600.0, "review the dose before lowering it"),
        (None, None, "review the dose of this order"),
    ],
    ids=["raised", "same", "same-as-shown", "lowered", "unknown"],
)
def test_the_summary_says_what_the_draft_does_to_the_dose(
    bundled_rules: RuleBase, mg_per_day: float | None, dose_change: float | None, words: str
) -> None:
    """Regression: a draft at the current dose was told "review the dose before raising
    it"; the rule passes ``dose_change`` (draft minus current mg/day, absent when either
    is unknown) and the summary words it."""
    outcome = order_outcome(mg_per_day=mg_per_day, dose_change=dose_change)
    (card,) = render_cards([outcome], context(bundled_rules))
    assert card["summary"] == f"Restless back on amisulpride: {words}"


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


# --- suggestions in tablets, capsules and mL of the draft's product -----------------------

VENLAFAXINE_75 = "venlafaxine 75 MG Oral Tablet"
PRODUCT_CODE = ("http://www.nlm.nih.gov/research/umls/rxnorm", "313586")


def unit_draft(
    display: str,
    count: float,
    unit: str = "{tablet}",
    per: tuple[float, float, str] = (1, 1, "d"),
    **extra: Any,
) -> dict[str, Any]:
    """A draft dosed in units of a product named ``display``, with a route and free text."""
    instruction = dose(count, unit, per=per, text=f"{count} {unit} stale", route={"text": "oral"})
    concept = {"coding": [{"system": RXNORM, "code": "313586", "display": display}]}
    return medication_request(
        id="u", status="draft", concept=concept, dosages=[instruction], **extra
    )


def product(
    display: str = VENLAFAXINE_75,
    strength: float | None = 75.0,
    per_ml: float | None = None,
    ingredient: str = "venlafaxine",
) -> DraftProduct:
    return DraftProduct(
        ingredient=ingredient,
        display=display,
        strength_mg=strength,
        mg_per_ml=per_ml,
        ingredient_code="39786" if ingredient == "venlafaxine" else None,
    )


def unit_context(
    bundled_rules: RuleBase, draft: dict[str, Any], made: DraftProduct | None
) -> RenderContext:
    products = {f"MedicationRequest/{draft['id']}": made} if made is not None else {}
    return dataclasses.replace(context(bundled_rules, [draft]), draft_products=products)


def unit_card(
    bundled_rules: RuleBase,
    draft: dict[str, Any],
    made: DraftProduct | None,
    ordered: float,
    current: float | None,
) -> dict[str, Any]:
    outcome = order_outcome(
        drug=made.ingredient if made else "venlafaxine",
        order=f"MedicationRequest/{draft['id']}",
        mg_per_day=ordered,
        current_mg=current,
    )
    (card,) = render_cards([outcome], unit_context(bundled_rules, draft, made))
    return card


def resources(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each suggestion's resource, checked to be a valid FHIR R4 MedicationRequest."""
    found = [s["actions"][0]["resource"] for s in card.get("suggestions", [])]
    for resource in found:
        MedicationRequest.model_validate(resource)
    return found


def daily_read_back(resource: Mapping[str, Any], made: DraftProduct) -> float | None:
    """The suggested order's mg/day as the service itself reads it."""
    model = MedicationRequest.model_validate(resource)
    return mg_per_day(model.dosageInstruction, made.strength_mg, made.mg_per_ml)


def test_sandbox_headline_keeps_the_tablet_and_writes_fifty_mg_in_mg(
    bundled_rules: RuleBase,
) -> None:
    """Venlafaxine 75 mg tablets, 2 a day ordered, 1 a day taken: keeping the current dose
    is 1 tablet of the same product; 50 mg/day is 2/3 of a tablet, so it is written as
    50 mg of venlafaxine (RxNorm ingredient 39786, drugs.tsv) and the product is left to
    the prescriber."""
    draft = unit_draft(VENLAFAXINE_75, 2)
    made = product()
    card = unit_card(bundled_rules, draft, made, ordered=150.0, current=75.0)

    keep, lower = resources(card)
    assert [s["label"] for s in card["suggestions"]] == [
        "Keep the current dose (75 mg/day: 1 tablet once a day)",
        "Order a lower dose instead (about 50 mg/day: venlafaxine 50 mg once a day)",
    ]
    assert keep["medicationCodeableConcept"] == draft["medicationCodeableConcept"]
    assert doses(keep) == [1]
    assert keep["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "{tablet}"
    assert lower["medicationCodeableConcept"] == {
        "text": "venlafaxine",
        "coding": [{"system": RXNORM, "code": "39786", "display": "venlafaxine"}],
    }
    assert lower["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] == {
        "value": 50,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    for resource in (keep, lower):
        (instruction,) = resource["dosageInstruction"]
        assert instruction["timing"] == draft["dosageInstruction"][0]["timing"]
        assert instruction["route"] == {"text": "oral"}
        assert "text" not in instruction
        assert (resource["id"], resource["status"]) == ("u", "draft")
    assert daily_read_back(keep, made) == 75
    assert daily_read_back(lower, made) == 50
    keep_text = card["suggestions"][0]["actions"][0]["description"]
    assert "from 150 mg/day to 75 mg/day: venlafaxine 75 MG Oral Tablet, 1 tablet" in keep_text
    lower_text = card["suggestions"][1]["actions"][0]["description"]
    assert "written in mg of venlafaxine" in lower_text
    assert "not a whole number of tablets of venlafaxine 75 MG Oral Tablet" in lower_text


@dataclasses.dataclass(frozen=True)
class TabletCase:
    display: str
    strength: float
    count: float
    per: tuple[float, float, str]
    ordered: float
    current: float | None
    want: list[tuple[str, float, str | None]]
    """(form, dose per administration, label's dose in words) per suggestion."""


TABLET_CASES = {
    "0.5-mg": TabletCase(
        "risperidone 0.5 MG Oral Tablet", 0.5, 4, (2, 1, "d"), 4.0, 2.0,
        [("units", 2, "2 tablets twice a day"), ("ingredient-mg", 0.65, None)],
    ),
    "2.5-mg": TabletCase(
        "olanzapine 2.5 MG Oral Tablet", 2.5, 4, (1, 1, "d"), 10.0, 5.0,
        [("units", 2, "2 tablets once a day"), ("ingredient-mg", 3.3, None)],
    ),
    "37.5-mg-inexact-lower": TabletCase(
        "venlafaxine 37.5 MG Oral Tablet", 37.5, 2, (2, 1, "d"), 150.0, 75.0,
        [("units", 1, "1 tablet twice a day"), ("ingredient-mg", 25, None)],
    ),
    "37.5-mg-exact-both": TabletCase(
        "venlafaxine 37.5 MG Oral Tablet", 37.5, 4, (2, 1, "d"), 300.0, 225.0,
        [("units", 3, "3 tablets twice a day"), ("units", 2, "2 tablets twice a day")],
    ),
    "weekly-inexact": TabletCase(
        "quetiapine 25 MG Oral Tablet", 25, 1, (1, 1, "wk"), 25 / 7, None,
        [("ingredient-mg", 16.8, None)],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", TABLET_CASES)
def test_tablet_suggestions_are_whole_tablets_or_mg(bundled_rules: RuleBase, name: str) -> None:
    """Exact arithmetic keeps the product (whole tablets per administration); anything
    else is written in mg of the ingredient; either way the order reads back (with the
    service's own dose reader) as the mg/day its description states."""
    case = TABLET_CASES[name]
    made = product(case.display, case.strength, ingredient=case.display.split(maxsplit=1)[0])
    draft = unit_draft(case.display, case.count, per=case.per)
    card = unit_card(bundled_rules, draft, made, round(case.ordered, 3), case.current)

    got = resources(card)
    assert len(got) == len(case.want)
    for suggestion, resource, (form, value, words) in zip(
        card["suggestions"], got, case.want, strict=True
    ):
        assert doses(resource) == [pytest.approx(value, rel=1e-3)]
        quantity_ = resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
        if form == "units":
            assert quantity_["code"] == "{tablet}"
            assert resource["medicationCodeableConcept"] == draft["medicationCodeableConcept"]
            assert suggestion["label"].endswith(f"mg/day: {words})")
        else:
            assert quantity_["code"] == "mg"
            assert resource["medicationCodeableConcept"]["text"] == made.ingredient
        assert daily_read_back(resource, made) == pytest.approx(stated_target(suggestion), rel=1e-3)


def test_capsules_are_never_split(bundled_rules: RuleBase) -> None:
    """Half a capsule is no dose: 25 mg/day of 50 mg capsules is written in mg."""
    display = "sertraline 50 MG Oral Capsule"
    made = product(display, 50.0, ingredient="sertraline")
    for unit in ("{capsule}", "{pill}", "capsule"):
        draft = unit_draft(display, 2, unit=unit)
        card = unit_card(bundled_rules, draft, made, ordered=100.0, current=25.0)
        keep, lower = resources(card)
        assert keep["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "mg"
        assert doses(keep) == [25]
        assert keep["medicationCodeableConcept"] == {"text": "sertraline"}
        assert "capsules are never split" in card["suggestions"][0]["actions"][0]["description"]
        assert doses(lower) == [pytest.approx(17)]


def test_half_tablets_only_where_the_draft_already_halves_a_plain_tablet(
    bundled_rules: RuleBase,
) -> None:
    """1.5 tablets ordered: the prescriber splits this product, so 0.5 tablet is a dose;
    2 tablets ordered, or a modified-release tablet: the service never proposes a split."""
    plain = "olanzapine 10 MG Oral Tablet"
    made = product(plain, 10.0, ingredient="olanzapine")
    card = unit_card(bundled_rules, unit_draft(plain, 1.5), made, ordered=15.0, current=5.0)
    keep = resources(card)[0]
    assert doses(keep) == [0.5]
    assert (
        card["suggestions"][0]["label"] == "Keep the current dose (5 mg/day: 0.5 tablet once a day)"
    )

    card = unit_card(bundled_rules, unit_draft(plain, 2), made, ordered=20.0, current=5.0)
    keep = resources(card)[0]
    assert keep["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "mg"

    modified = "24 HR venlafaxine 75 MG Extended Release Oral Tablet"
    made = product(modified, 75.0)
    card = unit_card(bundled_rules, unit_draft(modified, 1.5), made, ordered=112.5, current=37.5)
    keep = resources(card)[0]
    assert keep["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] == {
        "value": 37.5,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }


@pytest.mark.parametrize(
    "strength",
    [0.0, -5.0, math.nan, math.inf, 1e9, 1e300, None],
    ids=["zero", "negative", "nan", "infinite", "huge", "huger", "unknown"],
)
def test_a_strength_that_is_no_strength_gives_no_tablet_suggestion(
    bundled_rules: RuleBase, strength: float | None
) -> None:
    """Without a real strength the tablets cannot be converted: no suggestion rather
    than a guessed one; the card still stands and does not mention one."""
    draft = unit_draft(VENLAFAXINE_75, 2)
    card = unit_card(bundled_rules, draft, product(strength=strength), ordered=150.0, current=75.0)
    assert "suggestions" not in card
    assert "selectionBehavior" not in card
    assert card["overrideReasons"]


def test_a_draft_without_a_known_product_gives_no_tablet_suggestion(
    bundled_rules: RuleBase,
) -> None:
    draft = unit_draft(VENLAFAXINE_75, 2)
    card = unit_card(bundled_rules, draft, None, ordered=150.0, current=75.0)
    assert "suggestions" not in card


def test_sandbox_pill_without_a_unit_and_a_single_category(bundled_rules: RuleBase) -> None:
    """The Sandbox's Rx View sends ``{pill}`` with no human unit and ``category`` (and a
    chosen reason's ``reasonCode``) as one object where R4 has a list: the suggestion
    keeps the ``{pill}`` code, counts tablets from the product's name, and is valid R4."""
    category = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                "code": "community",
            }
        ]
    }
    reason = {"text": "Generalised anxiety disorder"}
    draft = unit_draft(VENLAFAXINE_75, 2, category=category, reasonCode=reason)
    quantity_ = draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    quantity_.pop("unit")
    quantity_["code"] = "{pill}"
    with pytest.raises(ValueError, match="category"):
        MedicationRequest.model_validate(draft)  # as sent, the draft is not valid R4

    card = unit_card(bundled_rules, draft, product(), ordered=150.0, current=75.0)

    keep, lower = resources(card)
    assert keep["category"] == [category]
    assert keep["reasonCode"] == [reason]
    assert keep["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] == {
        "value": 1,
        "system": "http://unitsofmeasure.org",
        "code": "{pill}",
    }
    assert (
        card["suggestions"][0]["label"] == "Keep the current dose (75 mg/day: 1 tablet once a day)"
    )
    assert lower["category"] == [category]


def test_dispense_quantity_follows_whole_tablets_and_goes_with_the_product(
    bundled_rules: RuleBase,
) -> None:
    supply = {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}
    dispense = {
        "quantity": quantity(60, "tablet", code="{tablet}"),
        "expectedSupplyDuration": supply,
    }
    draft = unit_draft(VENLAFAXINE_75, 2, dispenseRequest=dispense)
    card = unit_card(bundled_rules, draft, product(), ordered=150.0, current=75.0)
    keep, lower = resources(card)
    assert keep["dispenseRequest"]["quantity"]["value"] == 30
    assert keep["dispenseRequest"]["expectedSupplyDuration"] == supply
    assert "quantity" not in lower["dispenseRequest"]  # 60 tablets of a product now gone
    assert lower["dispenseRequest"]["expectedSupplyDuration"] == supply
    assert draft["dispenseRequest"]["quantity"]["value"] == 60  # the request is untouched


def test_a_medication_reference_is_replaced_with_its_contained_medication(
    bundled_rules: RuleBase,
) -> None:
    """Written in mg of the ingredient, the draft no longer points at its product; a
    contained Medication nothing else refers to goes with it (FHIR dom-3)."""
    medication = {
        "resourceType": "Medication",
        "id": "med",
        "code": {"coding": [{"system": RXNORM, "code": "313586", "display": VENLAFAXINE_75}]},
    }
    draft = unit_draft(VENLAFAXINE_75, 2, contained=[medication])
    draft.pop("medicationCodeableConcept")
    draft["medicationReference"] = {"reference": "#med"}
    card = unit_card(bundled_rules, draft, product(), ordered=150.0, current=75.0)
    keep, lower = resources(card)
    assert keep["medicationReference"] == {"reference": "#med"}
    assert keep["contained"] == [medication]
    assert "medicationReference" not in lower
    assert "contained" not in lower
    assert lower["medicationCodeableConcept"]["text"] == "venlafaxine"


def test_as_needed_maximum_in_tablets_is_counted_too(bundled_rules: RuleBase) -> None:
    ratio = {"numerator": quantity(4, "tablet", code="{tablet}"), "denominator": quantity(1, "d")}
    instruction = dose(2, "tablet", per=None, asNeededBoolean=True, maxDosePerPeriod=ratio)
    instruction["doseAndRate"][0]["doseQuantity"]["code"] = "{tablet}"
    draft = medication_request(
        id="prn", status="draft", text="quetiapine 25 MG Oral Tablet", dosages=[instruction]
    )
    made = product("quetiapine 25 MG Oral Tablet", 25.0, ingredient="quetiapine")
    card = unit_card(bundled_rules, draft, made, ordered=100.0, current=50.0)
    keep = resources(card)[0]
    assert doses(keep) == [1]
    assert keep["dosageInstruction"][0]["maxDosePerPeriod"]["numerator"]["value"] == 2
    assert daily_read_back(keep, made) == 50


def test_liquid_in_ml_when_a_whole_number_of_tenths_else_mg(bundled_rules: RuleBase) -> None:
    """risperidone 1 mg/mL, 2 mL twice a day: keeping 2 mg/day is 1 mL twice a day; about
    1.3 mg/day would be 0.65 mL, finer than an oral syringe measures: mg."""
    display = "risperidone 1 MG/ML Oral Solution"
    made = product(display, None, per_ml=1.0, ingredient="risperidone")
    draft = unit_draft(display, 2, unit="mL", per=(2, 1, "d"))
    card = unit_card(bundled_rules, draft, made, ordered=4.0, current=2.0)
    keep, lower = resources(card)
    assert keep["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "mL"
    assert doses(keep) == [1]
    assert card["suggestions"][0]["label"] == "Keep the current dose (2 mg/day: 1 mL twice a day)"
    assert lower["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "mg"
    assert doses(lower) == [pytest.approx(0.65)]
    assert lower["medicationCodeableConcept"] == {"text": "risperidone"}
    for suggestion, resource in zip(card["suggestions"], (keep, lower), strict=True):
        assert daily_read_back(resource, made) == pytest.approx(stated_target(suggestion))


def test_long_acting_injectable_labels_give_the_dose_per_injection(
    bundled_rules: RuleBase,
) -> None:
    """mg/day alone hides what the order says: 156 mg every 4 weeks, restored exactly
    although the mg/day values reach the renderer rounded to 3 decimals."""
    instruction = dose(234, per=(1, 4, "wk"))
    draft = medication_request(
        id="lai", status="draft", text="paliperidone palmitate", dosages=[instruction]
    )
    outcome = order_outcome(
        drug="paliperidone",
        order="MedicationRequest/lai",
        mg_per_day=round(234 / 28, 3),
        current_mg=round(156 / 28, 3),
    )
    (card,) = render_cards([outcome], context(bundled_rules, [draft]))
    keep, _ = resources(card)
    assert doses(keep) == [156]
    assert [s["label"] for s in card["suggestions"]] == [
        "Keep the current dose (5.57 mg/day: 156 mg every 4 weeks)",
        "Order a lower dose instead (about 3.7 mg/day: 103.6 mg every 4 weeks)",
    ]


# --- cards without suggestions ------------------------------------------------------------

_PROMISE = re.compile(r"\baccept|\bsuggest|\bbutton|\bclick", re.IGNORECASE)


def test_no_card_without_suggestions_mentions_accepting_one(bundled_rules: RuleBase) -> None:
    """Every card template of every rule, rendered with every section shown and no draft
    to suggest on (so no suggestions): no sentence may invite the clinician to accept,
    click or take a suggestion that is not there."""
    compiled = bundled_rules.compiled
    used = {rule.card_template for rule in compiled.rules.values() if rule.card_template}
    assert used
    assert used <= set(compiled.cards)
    ctx = context(bundled_rules)
    derived: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(used):
        for section in compiled.cards[name].sections:
            derived.setdefault(section.fact, []).append({section.attribute: "something"})
    ctx = dataclasses.replace(ctx, derived=derived)
    for rule in sorted(compiled.rules.values(), key=lambda r: r.id):
        if rule.card_template is None:
            continue
        template = compiled.cards[rule.card_template]
        names = placeholders(template.summary) | placeholders(template.detail)
        values = {
            n: order_values().get(n, 7.0 if n.endswith(("mg", "day", "days")) else "x")
            for n in names
        }
        (card,) = render_cards([Outcome(rule.id, rule.card_template, values)], ctx)
        assert "suggestions" not in card, rule.id
        for text in (card["summary"], card["detail"]):
            assert not _PROMISE.search(text), (rule.id, _PROMISE.search(text))
