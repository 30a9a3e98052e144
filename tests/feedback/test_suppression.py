"""Overrides that mean "already addressed" silence a rule for a patient, for a while."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds.feedback import FeedbackStore
from tests.feedback.support import (
    NOT_RELEVANT,
    RULE,
    SERVICE,
    T0,
    accepted,
    card,
    overridden,
    patient,
)

DAY = timedelta(days=1)


def test_a_suppressing_reason_silences_the_rule_for_the_period(store: FeedbackStore) -> None:
    store.record_cards([card("c1", suppress_days=30)])
    store.add_feedback(SERVICE, [overridden("c1")])
    assert store.suppressed_rules(patient(), T0 - DAY) == {RULE}
    assert store.suppressed_rules(patient(), T0 + 29.9 * DAY) == {RULE}
    assert store.suppressed_rules(patient(), T0 + 30 * DAY) == set()  # expired


def test_other_reasons_and_no_reason_do_not_suppress(store: FeedbackStore) -> None:
    store.record_cards([card("c1"), card("c2")])
    store.add_feedback(SERVICE, [overridden("c1", code=NOT_RELEVANT), overridden("c2", code=None)])
    assert store.suppressed_rules(patient(), T0) == set()


def test_accepted_outcomes_never_suppress(store: FeedbackStore) -> None:
    store.record_cards([card("c1")])
    store.add_feedback(SERVICE, [accepted("c1", "s1", override_code="already-addressed")])
    assert store.suppressed_rules(patient(), T0) == set()


def test_a_rule_without_a_period_is_never_suppressed(store: FeedbackStore) -> None:
    store.record_cards([card("c1", suppress_days=None), card("c2", suppress_days=0)])
    store.add_feedback(SERVICE, [overridden("c1"), overridden("c2")])
    assert store.suppressed_rules(patient(), T0) == set()


def test_only_that_rule_for_that_patient(store: FeedbackStore) -> None:
    store.record_cards(
        [
            card("c1"),
            card("c2", rule_id="card.observation"),
            card("c3", patient_pseudonym=patient("pt-2")),
        ]
    )
    store.add_feedback(SERVICE, [overridden("c1")])
    assert store.suppressed_rules(patient(), T0) == {RULE}
    assert store.suppressed_rules(patient("pt-2"), T0) == set()
    store.add_feedback(SERVICE, [overridden("c2")])
    assert store.suppressed_rules(patient(), T0) == {RULE, "card.observation"}
    assert store.suppressed_rules(patient("pt-2"), T0) == set()


def test_a_later_override_extends_and_an_earlier_one_does_not_shorten(
    store: FeedbackStore,
) -> None:
    store.record_cards([card("c1", suppress_days=10), card("c2", suppress_days=10)])
    store.add_feedback(SERVICE, [overridden("c1", outcome_timestamp=T0 + 5 * DAY)])
    assert store.suppressed_rules(patient(), T0 + 14 * DAY) == {RULE}
    store.add_feedback(SERVICE, [overridden("c2", outcome_timestamp=T0)])  # ends earlier
    assert store.suppressed_rules(patient(), T0 + 14 * DAY) == {RULE}
    assert store.suppressed_rules(patient(), T0 + 15 * DAY) == set()
    store.add_feedback(SERVICE, [overridden("c2", outcome_timestamp=T0 + 8 * DAY)])
    assert store.suppressed_rules(patient(), T0 + 17 * DAY) == {RULE}
    assert store.suppressed_rules(patient(), T0 + 18 * DAY) == set()


def test_the_longest_of_one_calls_overrides_wins(store: FeedbackStore) -> None:
    store.record_cards([card("c1", suppress_days=10), card("c2", suppress_days=40)])
    store.add_feedback(SERVICE, [overridden("c2"), overridden("c1")])
    assert store.suppressed_rules(patient(), T0 + 39 * DAY) == {RULE}


def test_the_period_is_the_one_recorded_with_the_card(store: FeedbackStore) -> None:
    store.record_cards([card("c1", suppress_days=2, suppress_reasons=(NOT_RELEVANT,))])
    store.add_feedback(SERVICE, [overridden("c1", code=NOT_RELEVANT)])
    assert store.suppressed_rules(patient(), T0 + 1.9 * DAY) == {RULE}
    assert store.suppressed_rules(patient(), T0 + 2 * DAY) == set()


def test_a_huge_period_does_not_overflow(store: FeedbackStore) -> None:
    store.record_cards([card("c1", suppress_days=1e12)])
    store.add_feedback(SERVICE, [overridden("c1")])
    assert store.suppressed_rules(patient(), T0 + 3650 * DAY) == {RULE}


def test_a_naive_now_is_refused(store: FeedbackStore) -> None:
    with pytest.raises(ValueError, match="now"):
        store.suppressed_rules(patient(), T0.replace(tzinfo=None))
