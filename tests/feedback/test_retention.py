"""Retention: ``prune`` deletes old cards with their feedback, expired suppressions and
token ids, and keeps a card while a suppression it set is live (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cds.feedback import FeedbackStore, PruneResult
from cds.feedback import store as store_module
from cds.feedback.models import Feedback, IssuedCard, Suppression
from tests.feedback.conftest import OpenStore
from tests.feedback.support import NOT_RELEVANT, RULE, T0, accepted, card, overridden, patient

DAY = timedelta(days=1)


def _count(store: FeedbackStore, entity: type) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(entity)).scalar_one())


def test_old_cards_go_with_their_feedback_and_newer_ones_stay(store: FeedbackStore) -> None:
    store.record_cards([card("old", issued_at=T0 - 100 * DAY), card("new", issued_at=T0)])
    store.add_feedback("restless-order-select", [accepted("old", "s1"), accepted("new", "s1")])
    result = store.prune(T0 - 90 * DAY, T0)
    assert result == PruneResult(cards=1, feedback=1, suppressions=0, token_uses=0)
    assert (_count(store, IssuedCard), _count(store, Feedback)) == (1, 1)
    (row,) = store.report()
    assert row.issued == 1
    assert store.prune(T0 - 90 * DAY, T0) == PruneResult()  # nothing left to do


def test_a_card_stays_while_its_suppression_is_live(store: FeedbackStore) -> None:
    store.record_cards([card("c1", issued_at=T0 - 100 * DAY, suppress_days=200)])
    store.add_feedback("restless-order-select", [overridden("c1", outcome_timestamp=T0 - 99 * DAY)])
    assert store.prune(T0 - 90 * DAY, T0).cards == 0
    assert store.suppressed_rules(patient(), T0) == {RULE}  # still silenced
    later = T0 + 102 * DAY  # the suppression ended at T0 + 101 days
    assert store.prune(later - 90 * DAY, later) == PruneResult(cards=1, feedback=1, suppressions=1)
    assert (_count(store, IssuedCard), _count(store, Suppression)) == (0, 0)


def test_expired_suppressions_and_token_ids_go_whatever_the_card_age(store: FeedbackStore) -> None:
    store.record_cards([card("c1", suppress_days=2, suppress_reasons=(NOT_RELEVANT,))])
    store.add_feedback("restless-order-select", [overridden("c1", NOT_RELEVANT)])
    now = datetime.now(UTC)  # the claim itself deletes ids expired by the clock
    assert store.first_token_use("iss", "jti-1", now + DAY)
    result = store.prune(T0 - 90 * DAY, now + 2 * DAY)
    assert (result.suppressions, result.token_uses, result.cards) == (1, 1, 0)
    assert _count(store, IssuedCard) == 1


def test_prune_deletes_in_batches(store: FeedbackStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "PRUNE_BATCH", 3)
    store.record_cards([card(f"c{n}", issued_at=T0 - 100 * DAY) for n in range(10)])
    store.add_feedback("restless-order-select", [accepted(f"c{n}", "s") for n in range(10)])
    assert store.prune(T0 - 90 * DAY, T0) == PruneResult(cards=10, feedback=10)
    assert _count(store, IssuedCard) == 0


def test_workers_pruning_at_once_all_succeed(open_store: OpenStore) -> None:
    first = open_store()
    first.record_cards([card(f"c{n}", issued_at=T0 - 100 * DAY) for n in range(50)])
    stores = [first, *(open_store() for _ in range(3))]
    start = threading.Barrier(len(stores))
    results: list[PruneResult] = []
    errors: list[BaseException] = []

    def prune(store: FeedbackStore) -> None:
        start.wait()
        try:
            results.append(store.prune(T0 - 90 * DAY, T0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=prune, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.cards for r in results) == 50  # each card deleted once, by someone
    assert _count(first, IssuedCard) == 0


def test_naive_datetimes_are_refused(store: FeedbackStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.prune(T0.replace(tzinfo=None), T0)
