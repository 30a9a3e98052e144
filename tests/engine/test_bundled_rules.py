"""The bundled rules' clinical logic, engine level: base facts built with the real fact
dataclasses (``tests.engine.bundled``) in, which card rules fire (``Outcome.rule_id``) out.

Days are small integers; every window boundary is read from ``rules/config.yaml``
(``onset_window_days``, ``after_stop_days``) so the tests follow the configuration.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from cds.engine import EngineResult, RuleEngine
from cds.rulebase import RuleBase, load_rulebase
from cds.settings import bundled_rules_dir
from tests.engine.bundled import complaint, draft_order_case, finding, medication

START = 100
"""The day the current drug was started in most cases."""

Card = tuple[str, str | None, str | None]
"""(rule id, drug, region) of one card outcome."""


@pytest.fixture(scope="module")
def bundled() -> RuleBase:
    """``load_rulebase(bundled_rules_dir())``, once per module (its own engine retired at
    once; each test evaluates in a fresh engine of the same compiled rules)."""
    base = load_rulebase(bundled_rules_dir())
    base.close()
    return base


@pytest.fixture
def engine(bundled: RuleBase) -> Iterator[RuleEngine]:
    fresh = RuleEngine(bundled.compiled, label="bundled")
    yield fresh
    fresh.close()


@pytest.fixture
def window(bundled: RuleBase) -> int:
    days: int = bundled.compiled.config["onset_window_days"]
    return days


@pytest.fixture
def after_stop(bundled: RuleBase) -> int:
    days: int = bundled.compiled.config["after_stop_days"]
    return days


def cards(result: EngineResult) -> list[Card]:
    """The card outcomes, one per (rule, drug, region): rendering dedupes repeats."""
    return sorted(
        {(o.rule_id, o.values.get("drug"), o.values.get("region")) for o in result.outcomes}
    )


def derived(result: EngineResult, fact_type: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in f.items() if k != "fact"}
        for f in result.derived_facts
        if f["fact"] == fact_type
    ]


def values_of(result: EngineResult, rule_id: str) -> list[Mapping[str, Any]]:
    return [o.values for o in result.outcomes if o.rule_id == rule_id]


def run(engine: RuleEngine, *facts: dict[str, Any] | Sequence[dict[str, Any]]) -> EngineResult:
    flat: list[dict[str, Any]] = []
    for fact in facts:
        flat.extend([fact] if isinstance(fact, dict) else fact)
    return engine.evaluate(flat)


def amisulpride(**changes: Any) -> dict[str, Any]:
    return medication("amisulpride", **{"start_day": START, "mg_per_day": 600.0, **changes})


def sertraline(**changes: Any) -> dict[str, Any]:
    spec = {"drug_class": "antidepressant", "start_day": START, "mg_per_day": 50.0, **changes}
    return medication("sertraline", **spec)


def olanzapine(**changes: Any) -> dict[str, Any]:
    return medication("olanzapine", **{"start_day": START, "mg_per_day": 10.0, **changes})


def levodopa(**changes: Any) -> dict[str, Any]:
    spec = {
        "drug_class": "dopaminergic_rls_treatment",
        "provoking": False,
        "start_day": START,
        "mg_per_day": 300.0,
        **changes,
    }
    return medication("levodopa", **spec)


def akathisia_complaint(*, region: str = "legs", **features: bool) -> dict[str, Any]:
    """Restlessness that moving does not relieve, worse at rest and at night (so it would
    also meet the rest-provoked criteria by sensation and night)."""
    spec = {
        "relieved_by_movement": False,
        "not_relieved_by_movement": True,
        "urge_to_move": True,
        "night_worse": True,
        **features,
    }
    return complaint(region, onset_day=START + 10, source=f"Condition/aka-{region}", **spec)


def rash_complaint(region: str = "back") -> dict[str, Any]:
    return complaint(
        region,
        onset_day=START + 12,
        source=f"Condition/rash-{region}",
        skin_lesion=True,
        rest_provoked=False,
        relieved_by_movement=False,
    )


LINKED_REVIEW: list[Card] = [("dose-review.current-drug", "amisulpride", "back")]
UNLINKED: list[Card] = [("observation.no-time-link", "amisulpride", "back")]
DRAFT_REVIEW: list[Card] = [("dose-review.draft-order", "amisulpride", "back")]


# --- onset relative to a current drug -------------------------------------------------


def test_onset_on_the_start_day_links(engine: RuleEngine) -> None:
    result = run(engine, amisulpride(), complaint(onset_day=START))
    assert cards(result) == LINKED_REVIEW
    assert derived(result, "temporal_link") == [
        {
            "drug": "amisulpride",
            "exposure": "MedicationRequest/amisulpride-active",
            "complaint": "Condition/c1",
            "current": True,
            "days_after_start": 0,
        }
    ]
    (values,) = values_of(result, "dose-review.current-drug")
    assert values == {
        "drug": "amisulpride",
        "drug_class": "antipsychotic",
        "current_mg": 600.0,
        "region": "back",
        "basis": "worse at rest, relieved by moving",
        "complaint": "back itch when lying down",
        "days": 0,
    }


def test_onset_the_day_before_the_start_does_not_link(engine: RuleEngine) -> None:
    result = run(engine, amisulpride(), complaint(onset_day=START - 1))
    assert derived(result, "temporal_link") == []
    assert cards(result) == UNLINKED


def test_onset_on_the_last_day_of_the_window_links(engine: RuleEngine, window: int) -> None:
    result = run(engine, amisulpride(), complaint(onset_day=START + window))
    assert cards(result) == LINKED_REVIEW
    assert [link["days_after_start"] for link in derived(result, "temporal_link")] == [window]


def test_onset_after_the_window_does_not_link(engine: RuleEngine, window: int) -> None:
    result = run(engine, amisulpride(), complaint(onset_day=START + window + 1))
    assert derived(result, "temporal_link") == []
    assert cards(result) == UNLINKED


@pytest.mark.parametrize(
    ("drug", "onset"),
    [
        pytest.param({"start_day": None}, START + 10, id="drug-start-unknown"),
        pytest.param({}, None, id="onset-unknown"),
    ],
)
def test_unknown_dates_give_an_observation(
    engine: RuleEngine, drug: dict[str, Any], onset: int | None
) -> None:
    result = run(engine, amisulpride(**drug), complaint(onset_day=onset))
    assert derived(result, "temporal_link") == []
    assert cards(result) == UNLINKED


def test_no_card_without_a_rest_provoked_complaint(engine: RuleEngine) -> None:
    mechanical = complaint(onset_day=START + 10, rest_provoked=False, relieved_by_movement=False)
    assert cards(run(engine, amisulpride(), mechanical)) == []


def test_complaint_recorded_with_todays_draft_is_not_caused_by_the_draft(
    engine: RuleEngine,
) -> None:
    """Regression (rules/30-temporal-link.yaml, link.onset-on-current-drug; older than this
    change): a draft's exposure starts today, so a complaint whose onset is today (as
    every Condition recorded today without an onset is) links to the draft itself.
    dose-review.draft-order then binds the draft as the "current" exposure and, firing
    first, its card wins the dedupe: "current 800 mg/day; this order 800 mg/day ...
    began 0 days after amisulpride was started". A drug not yet given caused nothing."""
    today = START + 30
    result = run(
        engine,
        amisulpride(),
        amisulpride(draft=True, start_day=today, mg_per_day=800.0),
        complaint(onset_day=today),
    )
    assert cards(result) == DRAFT_REVIEW
    assert [(v["current_mg"], v["days"]) for v in values_of(result, "dose-review.draft-order")] == [
        (600.0, 30)
    ]


# --- a stopped drug ---------------------------------------------------------------------


STOPPED_END = START + 20
"""The day the stopped drug of these cases ended."""


def stopped_amisulpride(end_day: int | None = STOPPED_END, **changes: Any) -> dict[str, Any]:
    return amisulpride(**{"status": "stopped", "end_day": end_day, **changes})


def test_stopped_long_before_the_onset_does_not_link(engine: RuleEngine, after_stop: int) -> None:
    onset = STOPPED_END + after_stop + 1  # one day too late
    result = run(engine, stopped_amisulpride(STOPPED_END), complaint(onset_day=onset))
    assert [e["current"] for e in derived(result, "exposure")] == [False]
    assert derived(result, "temporal_link") == []
    assert cards(result) == []


@pytest.mark.parametrize(
    ("day_since_end", "extra"),
    [
        pytest.param(-20, 0, id="onset-on-the-start-day"),
        pytest.param(-10, 0, id="onset-while-taken"),
        pytest.param(0, 0, id="onset-on-the-end-day"),
        pytest.param(0, 1, id="onset-on-the-last-day-after-stopping"),
    ],
)
@pytest.mark.parametrize("status", ["stopped", "completed"])
def test_stopped_within_the_window_gives_an_observation(
    engine: RuleEngine, after_stop: int, day_since_end: int, extra: int, status: str
) -> None:
    """Regression: link.onset-on-stopped-drug once bound the single complaint fact twice
    (durable-rules binds a fact to at most one condition of a rule), so it never fired
    and observation.stopped-drug was unreachable (fixed in 7e66252).

    ``extra`` 1 puts the onset exactly ``after_stop_days`` after the end."""
    onset = STOPPED_END + day_since_end + extra * after_stop
    medication_ = stopped_amisulpride(STOPPED_END, status=status)
    result = run(engine, medication_, complaint(onset_day=onset))
    assert cards(result) == [("observation.stopped-drug", "amisulpride", "back")]
    (values,) = {tuple(sorted(v.items())) for v in values_of(result, "observation.stopped-drug")}
    assert dict(values) == {
        "drug": "amisulpride",
        "region": "back",
        "basis": "worse at rest, relieved by moving",
        "complaint": "back itch when lying down",
        "days": onset - START,
    }


@pytest.mark.parametrize(
    ("medication_", "onset"),
    [
        pytest.param(stopped_amisulpride(end_day=None), START + 10, id="no-end-day"),
        pytest.param(stopped_amisulpride(start_day=None), START + 10, id="no-start-day"),
        pytest.param(stopped_amisulpride(), START - 1, id="onset-before-the-start"),
    ],
)
def test_stopped_drug_that_cannot_explain_the_onset_gives_nothing(
    engine: RuleEngine, medication_: dict[str, Any], onset: int
) -> None:
    result = run(engine, medication_, complaint(onset_day=onset))
    assert derived(result, "temporal_link") == []
    assert cards(result) == []


def test_stopped_drug_taken_long_before_the_onset_does_not_link(
    engine: RuleEngine, window: int
) -> None:
    """Still taken until just before the onset, but started longer ago than the window."""
    onset = START + window + 1
    result = run(engine, stopped_amisulpride(end_day=onset - 1), complaint(onset_day=onset))
    assert derived(result, "temporal_link") == []
    assert cards(result) == []


def test_stopped_and_restarted_drug_is_reviewed_as_current(engine: RuleEngine) -> None:
    """The same drug taken again: a dose review, not "since stopped"."""
    result = run(
        engine,
        stopped_amisulpride(start_day=START - 40, end_day=START - 5),
        amisulpride(),
        complaint(onset_day=START + 10),
    )
    assert cards(result) == LINKED_REVIEW


# --- a draft raising the dose -------------------------------------------------------------


def raising_draft(mg_per_day: float | None = 800.0, **changes: Any) -> dict[str, Any]:
    return amisulpride(draft=True, start_day=START + 30, mg_per_day=mg_per_day, **changes)


def test_dose_increase_without_a_time_link(engine: RuleEngine) -> None:
    result = run(engine, amisulpride(), raising_draft(), complaint(onset_day=START - 10))
    assert derived(result, "dose_increase") == [
        {
            "drug": "amisulpride",
            "from_mg": 600.0,
            "to_mg": 800.0,
            "order": "MedicationRequest/amisulpride-draft",
            "taken": "MedicationRequest/amisulpride-active",
        }
    ]
    assert cards(result) == [("dose-review.dose-increase", "amisulpride", "back")]
    (values,) = values_of(result, "dose-review.dose-increase")
    assert values == {
        "drug": "amisulpride",
        "drug_class": "antipsychotic",
        "current_mg": 600.0,
        "mg_per_day": 800.0,
        "order": "MedicationRequest/amisulpride-draft",
        "region": "back",
        "basis": "worse at rest, relieved by moving",
        "complaint": "back itch when lying down",
    }


def test_dose_increase_with_a_time_link_is_the_draft_order_review(engine: RuleEngine) -> None:
    result = run(engine, draft_order_case())
    assert cards(result) == DRAFT_REVIEW
    (values,) = values_of(result, "dose-review.draft-order")
    assert (values["current_mg"], values["mg_per_day"], values["days"]) == (600.0, 800.0, 10)


@pytest.mark.parametrize(
    "draft",
    [
        pytest.param(raising_draft(600.0), id="same-dose"),
        pytest.param(raising_draft(400.0), id="lower-dose"),
        pytest.param(raising_draft(None), id="unknown-dose"),
    ],
)
def test_draft_not_raising_the_dose_is_no_increase(
    engine: RuleEngine, draft: dict[str, Any]
) -> None:
    result = run(engine, amisulpride(), draft, complaint(onset_day=START - 10))
    assert derived(result, "dose_increase") == []
    assert cards(result) == UNLINKED


def test_draft_of_another_drug_is_no_increase(engine: RuleEngine) -> None:
    result = run(
        engine,
        amisulpride(),
        olanzapine(draft=True, start_day=START + 30, mg_per_day=20.0),
        complaint(onset_day=START - 10),
    )
    assert derived(result, "dose_increase") == []
    assert ("dose-review.dose-increase", "amisulpride", "back") not in cards(result)


def test_dose_increase_over_a_stopped_order_is_no_increase(engine: RuleEngine) -> None:
    result = run(engine, stopped_amisulpride(), raising_draft(), complaint(onset_day=START - 10))
    assert derived(result, "dose_increase") == []


def test_dose_increase_without_a_complaint_gives_no_card(engine: RuleEngine) -> None:
    result = run(engine, amisulpride(), raising_draft())
    assert len(derived(result, "dose_increase")) == 1
    assert cards(result) == []


def test_draft_lowering_the_dose_of_a_linked_drug_is_not_reviewed_again(
    engine: RuleEngine,
) -> None:
    result = run(engine, amisulpride(), raising_draft(400.0), complaint(onset_day=START + 10))
    assert derived(result, "dose_reduction") == [
        {
            "drug": "amisulpride",
            "from_mg": 600.0,
            "to_mg": 400.0,
            "order": "MedicationRequest/amisulpride-draft",
            "taken": "MedicationRequest/amisulpride-active",
        }
    ]
    assert cards(result) == []


@pytest.mark.parametrize(
    "mg_per_day",
    [pytest.param(None, id="unknown-dose"), pytest.param(0.0, id="zero-dose")],
)
def test_draft_of_unknown_dose_for_a_linked_drug_is_reviewed(
    engine: RuleEngine, mg_per_day: float | None
) -> None:
    result = run(engine, amisulpride(), raising_draft(mg_per_day), complaint(onset_day=START + 10))
    assert derived(result, "dose_reduction") == []
    assert derived(result, "dose_increase") == []
    assert cards(result) == DRAFT_REVIEW


# --- a provoking drug first ordered for a patient with the complaint -------------------------


def test_new_provoking_drug_for_a_patient_with_the_complaint(engine: RuleEngine) -> None:
    draft = olanzapine(draft=True, start_day=START + 30)
    result = run(engine, draft, complaint(onset_day=START + 10))
    assert cards(result) == [("observation.new-drug", "olanzapine", "back")]
    (values,) = values_of(result, "observation.new-drug")
    assert values == {
        "drug": "olanzapine",
        "drug_class": "antipsychotic",
        "region": "back",
        "basis": "worse at rest, relieved by moving",
        "complaint": "back itch when lying down",
    }


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        pytest.param(
            [amisulpride(), raising_draft(), complaint(onset_day=START - 10)],
            [("dose-review.dose-increase", "amisulpride", "back")],
            id="drug-already-taken",
        ),
        pytest.param([olanzapine(draft=True, start_day=START + 30)], [], id="no-complaint"),
        pytest.param(
            [levodopa(draft=True, start_day=START + 30), complaint(onset_day=START + 10)],
            [],
            id="not-provoking",
        ),
        pytest.param(
            [
                olanzapine(draft=True, start_day=START + 30),
                complaint(onset_day=START + 10),
                finding("akathisia", "Akathisia"),
            ],
            [("akathisia.on-provoking-drug", "olanzapine", None)],
            id="akathisia",
        ),
        pytest.param(
            [
                olanzapine(draft=True, start_day=START + 30),
                complaint(onset_day=START + 10),
                rash_complaint("back"),
            ],
            [],
            id="rash-at-the-site",
        ),
        pytest.param(
            [
                sertraline(),
                olanzapine(draft=True, start_day=START + 30),
                complaint(onset_day=START - 10),
            ],
            [
                ("new-drug.added-antipsychotic", "olanzapine", "back"),
                ("observation.no-time-link", "sertraline", "back"),
            ],
            id="completes-the-combination",
        ),
    ],
)
def test_no_new_drug_observation(
    engine: RuleEngine, facts: list[dict[str, Any]], expected: list[Card]
) -> None:
    assert cards(run(engine, facts)) == expected


# --- akathisia silences the RLS cards -------------------------------------------------


def test_coded_akathisia_silences_the_dose_review(engine: RuleEngine) -> None:
    akathisia = finding("akathisia", "Akathisia, drug-induced (differential for RLS)")
    result = run(engine, draft_order_case(), akathisia)
    assert cards(result) == [("akathisia.on-provoking-drug", "amisulpride", None)]
    assert {v["basis"] for v in values_of(result, "akathisia.on-provoking-drug")} == {
        "coded diagnosis"
    }


@pytest.mark.parametrize(
    ("features", "basis"),
    [
        pytest.param({}, "restlessness not relieved by moving", id="urge-not-relieved"),
        pytest.param(
            {"urge_to_move": False, "inner_restlessness": True},
            "inner restlessness not relieved by moving",
            id="inner-restlessness-not-relieved",
        ),
    ],
)
def test_restlessness_not_relieved_by_moving_is_akathisia(
    engine: RuleEngine, features: dict[str, Any], basis: str
) -> None:
    result = run(
        engine, amisulpride(), complaint(onset_day=START + 10), akathisia_complaint(**features)
    )
    # the back complaint would have had a dose review
    assert cards(result) == [("akathisia.on-provoking-drug", "amisulpride", None)]
    assert [a["basis"] for a in derived(result, "akathisia")] == [basis]


@pytest.mark.parametrize(
    "features",
    [
        pytest.param({"urge_to_move": False}, id="not-relieved-alone"),
        pytest.param({"not_relieved_by_movement": False}, id="urge-alone"),
        pytest.param(
            {"not_relieved_by_movement": False, "urge_to_move": False, "inner_restlessness": True},
            id="inner-restlessness-alone",
        ),
    ],
)
def test_one_sign_alone_is_not_akathisia(engine: RuleEngine, features: dict[str, Any]) -> None:
    result = run(engine, amisulpride(), akathisia_complaint(**features))
    assert derived(result, "akathisia") == []
    # unpleasant sensations at rest, worse at night: the RLS card stands
    assert cards(result) == [("dose-review.current-drug", "amisulpride", "legs")]


def test_akathisia_without_a_current_provoking_drug_gives_no_card(engine: RuleEngine) -> None:
    coded = finding("akathisia", "Akathisia")
    for drugs in ([levodopa()], [stopped_amisulpride()], []):
        result = run(engine, *drugs, coded, akathisia_complaint())
        assert len(derived(result, "akathisia")) == 2
        assert cards(result) == []


# --- a skin lesion explains the complaint at its site -------------------------------------


@pytest.mark.parametrize(
    ("case", "silenced"),
    [
        pytest.param(draft_order_case(), DRAFT_REVIEW, id="draft-order-review"),
        pytest.param(
            [amisulpride(), raising_draft(), complaint(onset_day=START - 10)],
            [("dose-review.dose-increase", "amisulpride", "back")],
            id="dose-increase-review",
        ),
        pytest.param([amisulpride(), complaint(onset_day=START + 10)], LINKED_REVIEW, id="review"),
        pytest.param([amisulpride(), complaint(onset_day=START - 10)], UNLINKED, id="observation"),
    ],
)
def test_skin_lesion_in_the_same_region_silences_the_cards(
    engine: RuleEngine, case: list[dict[str, Any]], silenced: list[Card]
) -> None:
    assert cards(run(engine, case)) == silenced
    assert cards(run(engine, case, rash_complaint("back"))) == []
    coded = finding("skin_lesion", "Pruritic rash", region="back")
    assert cards(run(engine, case, coded)) == []


def test_skin_lesion_stated_in_the_complaint_itself(engine: RuleEngine) -> None:
    itch_with_rash = complaint(onset_day=START + 10, skin_lesion=True)
    result = run(engine, amisulpride(), itch_with_rash)
    assert derived(result, "skin_explanation") == [{"region": "back", "source": "Condition/c1"}]
    assert cards(result) == []


@pytest.mark.parametrize(
    "lesion",
    [
        pytest.param(finding("skin_lesion", "Pruritic rash", region="legs"), id="coded-legs"),
        pytest.param(rash_complaint("arms"), id="described-arms"),
    ],
)
def test_skin_lesion_in_another_region_does_not_silence(
    engine: RuleEngine, lesion: dict[str, Any]
) -> None:
    assert cards(run(engine, draft_order_case(), lesion)) == DRAFT_REVIEW


def test_skin_lesion_of_unspecified_region_silences(engine: RuleEngine) -> None:
    """Regression (cds.engine.compiler ``in`` / durable-rules): ``region: {in: [complaint.region,
    unspecified]}`` compiles to an ``$or`` of a join and a literal, and durable-rules
    2.0.28 evaluates only the join branch (jruizgit/rules#308), so a rash coded without
    a body site never silences a card; every ``absent: skin_explanation`` in
    rules/40-drug-induced-restless-syndrome.yaml is affected."""
    coded = finding("skin_lesion", "Pruritic rash")  # region "unspecified"
    result = run(engine, draft_order_case(), coded)
    assert derived(result, "skin_explanation") == [
        {"region": "unspecified", "source": "Condition/skin_lesion-unspecified"}
    ]
    assert cards(result) == []


# --- antipsychotic with antidepressant ----------------------------------------------------


def test_antipsychotic_and_antidepressant_combine(engine: RuleEngine) -> None:
    result = run(engine, amisulpride(), sertraline())
    assert derived(result, "combination_risk") == [
        {"antipsychotic": "amisulpride", "antidepressant": "sertraline"}
    ]
    assert cards(result) == []  # no complaint, no card


@pytest.mark.parametrize(
    "drugs",
    [
        pytest.param([amisulpride(), olanzapine()], id="two-antipsychotics"),
        pytest.param([sertraline()], id="antidepressant-alone"),
        pytest.param([amisulpride(), sertraline(status="stopped", end_day=90)], id="past"),
        pytest.param([levodopa(), sertraline()], id="not-an-antipsychotic"),
    ],
)
def test_no_combination(engine: RuleEngine, drugs: list[dict[str, Any]]) -> None:
    assert derived(run(engine, drugs), "combination_risk") == []


# --- a drug that does not provoke ----------------------------------------------------------


def test_levodopa_gives_nothing(engine: RuleEngine) -> None:
    result = run(
        engine,
        levodopa(),
        levodopa(draft=True, start_day=START + 30, mg_per_day=600.0),
        complaint(onset_day=START + 10),
    )
    assert derived(result, "exposure") == []
    assert derived(result, "temporal_link") == []
    assert derived(result, "dose_increase") == []
    assert cards(result) == []


# --- a new drug completing the combination --------------------------------------------------


def draft_sertraline() -> dict[str, Any]:
    return sertraline(draft=True, start_day=START + 30)


def test_antidepressant_added_to_an_antipsychotic(engine: RuleEngine) -> None:
    result = run(engine, amisulpride(), draft_sertraline(), complaint(onset_day=START + 10))
    assert ("new-drug.added-to-combination", "sertraline", "back") in cards(result)
    (values,) = values_of(result, "new-drug.added-to-combination")
    assert values == {
        "drug": "sertraline",
        "drug_class": "antidepressant",
        "region": "back",
        "basis": "worse at rest, relieved by moving",
        "complaint": "back itch when lying down",
    }


def test_added_drug_gets_no_observation_of_its_own(engine: RuleEngine) -> None:
    """Regression (fixed in 3f09f52): the draft's own exposure also got "monitor ...
    whether it began after sertraline was started is not known" beside the new-drug
    warning about the same drug and region; the drug is not yet taken."""
    result = run(engine, amisulpride(), draft_sertraline(), complaint(onset_day=START + 10))
    assert cards(result) == [
        ("dose-review.current-drug", "amisulpride", "back"),
        ("new-drug.added-to-combination", "sertraline", "back"),
    ]


def test_antipsychotic_added_to_an_antidepressant(engine: RuleEngine) -> None:
    result = run(
        engine,
        sertraline(),
        olanzapine(draft=True, start_day=START + 30),
        complaint(onset_day=START - 10),
    )
    assert ("new-drug.added-antipsychotic", "olanzapine", "back") in cards(result)
    assert "new-drug.added-to-combination" not in {rule for rule, _, _ in cards(result)}


@pytest.mark.parametrize(
    "facts",
    [
        pytest.param(
            [amisulpride(), sertraline(), draft_sertraline(), complaint(onset_day=START + 10)],
            id="already-taken",
        ),
        pytest.param([amisulpride(), draft_sertraline()], id="no-complaint"),
        pytest.param([draft_sertraline(), complaint(onset_day=START + 10)], id="no-antipsychotic"),
        pytest.param(
            [
                amisulpride(),
                sertraline(),
                medication("lithium", drug_class="mood_stabilizer", draft=True, start_day=130),
                complaint(onset_day=START + 10),
            ],
            id="lithium-added-to-the-pair",
        ),
        pytest.param(
            [
                amisulpride(),
                draft_sertraline(),
                complaint(onset_day=START + 10),
                finding("akathisia", "Akathisia"),
            ],
            id="akathisia",
        ),
        pytest.param(
            [
                amisulpride(),
                draft_sertraline(),
                complaint(onset_day=START + 10),
                rash_complaint("back"),
            ],
            id="rash-at-the-site",
        ),
    ],
)
def test_no_new_drug_card(engine: RuleEngine, facts: list[dict[str, Any]]) -> None:
    fired = {rule for rule, _, _ in cards(run(engine, facts))}
    assert not fired & {"new-drug.added-to-combination", "new-drug.added-antipsychotic"}


# --- secondary causes -------------------------------------------------------------------


def test_secondary_cause_is_derived_and_does_not_change_the_cards(engine: RuleEngine) -> None:
    iron = finding("secondary_cause", "Iron deficiency anaemia", source="Condition/iron")
    result = run(engine, draft_order_case(), iron)
    assert derived(result, "secondary_cause") == [
        {"concept": "Iron deficiency anaemia", "source": "Condition/iron"}
    ]
    assert cards(result) == DRAFT_REVIEW
