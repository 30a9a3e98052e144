"""Fact aggregation before the engine: renewals become episodes, repeats one fact."""

from __future__ import annotations

import dataclasses

from cds.facts import ComplaintFact, FindingFact, MedicationFact, aggregate_facts


def _order(source: str, start: int, end: int | None = None, **changes: object) -> MedicationFact:
    fact = MedicationFact(
        ingredient="amisulpride",
        drug_class="antipsychotic",
        subclass="atypical (benzamide)",
        provoking=True,
        status="completed" if end is not None else "active",
        draft=False,
        current=end is None,
        recognised_by="rxnorm-ingredient",
        display=source,
        source=f"MedicationRequest/{source}",
        mg_per_day=600.0,
        start_day=start,
        end_day=end,
    )
    return dataclasses.replace(fact, **changes)  # type: ignore[arg-type]


def _complaint(source: str, onset: int | None, **changes: object) -> ComplaintFact:
    fact = ComplaintFact(
        region="back",
        coded_restless=False,
        rest_provoked=True,
        relieved_by_movement=True,
        night_worse=False,
        unpleasant_sensation=True,
        urge_to_move=False,
        not_relieved_by_movement=False,
        inner_restlessness=False,
        skin_lesion=False,
        display=source,
        source=f"Condition/{source}",
        onset_day=onset,
    )
    return dataclasses.replace(fact, **changes)  # type: ignore[arg-type]


def test_renewals_at_one_dose_become_one_episode_named_by_the_current_order() -> None:
    """Regression: 70 renewals of one drug entered the engine as 70 exposures, each
    joined with every complaint, and overflowed the session (503 "retry" forever)."""
    renewals = [_order(f"r{i}", 100 + 30 * i, 129 + 30 * i) for i in range(69)]
    active = _order("now", 100 + 30 * 69)
    [episode] = aggregate_facts([*renewals, active])
    assert isinstance(episode, MedicationFact)
    assert episode.source == "MedicationRequest/now"
    assert (episode.start_day, episode.end_day, episode.current) == (100, None, True)
    assert episode.status == "active"


def test_a_past_episode_keeps_its_first_start_and_last_end() -> None:
    orders = [_order("a", 10, 39), _order("b", 40, 69), _order("c", 60, 90)]
    [episode] = aggregate_facts(orders)
    assert isinstance(episode, MedicationFact)
    assert (episode.start_day, episode.end_day, episode.current) == (10, 90, False)


def test_a_gap_or_a_dose_change_starts_a_new_episode() -> None:
    """The onset window also runs from a dose increase, so a new dose is a new episode."""
    orders = [
        _order("a", 10, 39),
        _order("after-gap", 50, 79),
        _order("raised", 80, 109, mg_per_day=800.0),
    ]
    kept = aggregate_facts(orders)
    assert [f.source for f in kept] == [
        f"MedicationRequest/{n}" for n in ("a", "after-gap", "raised")
    ]


def test_two_current_orders_and_drafts_stay_apart() -> None:
    draft = _order("draft", 200, status="draft", draft=True)
    first, second = _order("first", 10), _order("second", 100)
    kept = aggregate_facts([draft, first, second, dataclasses.replace(draft, source="d2")])
    assert [f.source for f in kept] == [
        "MedicationRequest/draft",
        "MedicationRequest/first",
        "MedicationRequest/second",
        "d2",
    ]


def test_orders_without_a_start_merge_only_when_equal() -> None:
    undated = [_order("u1", 0, start_day=None), _order("u2", 0, start_day=None)]
    other = _order("u3", 0, start_day=None, mg_per_day=100.0)
    assert [f.source for f in aggregate_facts([*undated, other])] == [
        "MedicationRequest/u1",
        "MedicationRequest/u3",
    ]


def test_repeated_complaints_merge_per_region_features_and_onset() -> None:
    notes = [_complaint(f"n{i}", 500) for i in range(50)]
    later = _complaint("later", 600)
    legs = _complaint("legs", 500, region="legs")
    night = _complaint("night", 500, night_worse=True)
    kept = aggregate_facts([*notes, later, legs, night])
    assert [f.source for f in kept] == [
        "Condition/n0",
        "Condition/later",
        "Condition/legs",
        "Condition/night",
    ]


def test_findings_equal_but_for_source_merge_and_order_is_kept() -> None:
    rash = FindingFact("skin_lesion", "rash", "back", "Rash", "Condition/r1", 5)
    again = dataclasses.replace(rash, source="Condition/r2")
    complaint = _complaint("c", 5)
    order = _order("o", 1)
    assert aggregate_facts([rash, order, again, complaint]) == [rash, order, complaint]


def test_thousands_of_renewals_and_repeats_reduce_to_two_facts() -> None:
    orders = [_order(f"r{i}", 30 * i, 30 * i + 29) for i in range(2000)]
    complaints = [_complaint(f"c{i}", 100) for i in range(2000)]
    kept = aggregate_facts([*orders, *complaints])
    assert len(kept) == 2
