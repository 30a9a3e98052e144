"""Recording cards and storing feedback: idempotent, all-or-nothing, per service."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest
from sqlalchemy import func, select

from cds.feedback import FeedbackResult, FeedbackStore, UnknownCardError
from cds.feedback.models import Feedback, IssuedCard
from tests.feedback.support import SERVICE, T0, accepted, card, overridden


def count(store: FeedbackStore, entity: type[IssuedCard] | type[Feedback]) -> int:
    with store.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(entity)).scalar_one()


def test_record_cards_is_idempotent_on_the_card_uuid(store: FeedbackStore) -> None:
    store.record_cards([card("c1"), card("c2")])
    store.record_cards([card("c1", rule_id="another.rule"), card("c3")])
    store.record_cards([])
    assert count(store, IssuedCard) == 3
    with store.engine.connect() as connection:
        rule = connection.execute(select(IssuedCard.rule_id).where(IssuedCard.card_uuid == "c1"))
        assert rule.scalar_one() == card("c1").rule_id  # the first recording is kept


def test_issued_at_comes_back_aware_and_in_utc(store: FeedbackStore) -> None:
    store.record_cards([card("c1", issued_at=T0.astimezone(timezone(timedelta(hours=-5))))])
    with store.engine.connect() as connection:
        issued_at = connection.execute(select(IssuedCard.issued_at)).scalar_one()
    assert issued_at == T0
    assert issued_at.tzinfo is UTC


def test_feedback_is_stored(store: FeedbackStore) -> None:
    store.record_cards([card("c1"), card("c2")])
    result = store.add_feedback(SERVICE, [accepted("c1", "s1"), overridden("c2", has_comment=True)])
    assert result == FeedbackResult(stored=2, duplicates=0)
    columns = (
        Feedback.outcome,
        Feedback.accepted_suggestions,
        Feedback.override_code,
        Feedback.has_comment,
        Feedback.outcome_timestamp,
    )
    with store.engine.connect() as connection:
        rows = connection.execute(select(*columns).order_by(Feedback.card_uuid)).all()
    assert [tuple(row) for row in rows] == [
        ("accepted", ["s1"], None, False, T0),
        ("overridden", [], "already-addressed", True, T0),
    ]


def test_the_same_feedback_twice_is_stored_once(store: FeedbackStore) -> None:
    store.record_cards([card("c1")])
    item = accepted("c1", "s1", "s2")
    assert store.add_feedback(SERVICE, [item, item]) == FeedbackResult(stored=1, duplicates=1)
    assert store.add_feedback(SERVICE, [item]) == FeedbackResult(stored=0, duplicates=1)
    resent = accepted("c1", "s2", "s1", outcome_timestamp=T0.astimezone(UTC))
    assert store.add_feedback(SERVICE, [resent]) == FeedbackResult(stored=0, duplicates=1)
    assert count(store, Feedback) == 1


def test_feedback_that_differs_in_what_identifies_it_is_new(store: FeedbackStore) -> None:
    store.record_cards([card("c1")])
    store.add_feedback(SERVICE, [overridden("c1")])
    later = overridden("c1", outcome_timestamp=T0 + timedelta(seconds=1))
    other_reason = overridden("c1", code="not-relevant")
    relabelled = overridden("c1", override_display="Already addressed!")  # not identifying
    result = store.add_feedback(SERVICE, [later, other_reason, relabelled])
    assert result == FeedbackResult(stored=2, duplicates=1)


def test_an_unknown_card_rejects_the_whole_call(store: FeedbackStore) -> None:
    store.record_cards([card("c1")])
    with pytest.raises(UnknownCardError) as raised:
        store.add_feedback(SERVICE, [accepted("c1"), overridden("nope"), accepted("nope2")])
    assert raised.value.card_uuids == ["nope", "nope2"]
    assert count(store, Feedback) == 0


def test_a_card_of_another_service_is_unknown(store: FeedbackStore) -> None:
    store.record_cards([card("c1"), card("c2", service_id="restless-patient-view")])
    with pytest.raises(UnknownCardError) as raised:
        store.add_feedback(SERVICE, [accepted("c1"), accepted("c2")])
    assert raised.value.card_uuids == ["c2"]
    assert count(store, Feedback) == 0
    result = store.add_feedback("restless-patient-view", [accepted("c2")])
    assert result == FeedbackResult(stored=1, duplicates=0)


def test_no_items_is_nothing_to_do(store: FeedbackStore) -> None:
    assert store.add_feedback(SERVICE, []) == FeedbackResult(stored=0, duplicates=0)
