"""The report: per rule and rules version, cards issued and what became of them."""

from __future__ import annotations

from datetime import timedelta

from cds.feedback import FeedbackStore, ReportRow
from tests.feedback.support import NOT_RELEVANT, RULE, SERVICE, T0, accepted, card, overridden

DAY = timedelta(days=1)


def test_an_empty_store_reports_nothing(store: FeedbackStore) -> None:
    assert store.report() == []


def test_counts_reasons_and_acceptance_rate(store: FeedbackStore) -> None:
    store.record_cards([card(f"a{n}") for n in range(6)])
    store.record_cards([card("b1", rules_version="2.0"), card("o1", rule_id="card.observation")])
    store.add_feedback(
        SERVICE,
        [
            accepted("a0", "s1"),
            accepted("a0", "s1", outcome_timestamp=T0 + DAY),  # the same card again
            accepted("a1", "s2"),
            accepted("a2"),
            overridden("a3"),
            overridden("a4", code=NOT_RELEVANT),
            overridden("a5", code=None),
            overridden("b1", code=NOT_RELEVANT),
        ],
    )
    rows = store.report()
    assert [(row.rule_id, row.rules_version) for row in rows] == [
        ("card.dose-review", "1.0+abc123"),
        ("card.dose-review", "2.0"),
        ("card.observation", "1.0+abc123"),
    ]
    first, second, third = rows
    reasons = {"already-addressed": 1, NOT_RELEVANT: 1}
    assert first == ReportRow(
        RULE, "1.0+abc123", 6, accepted=3, overridden=3, override_reasons=reasons
    )
    assert first.acceptance_rate == 0.5
    assert second == ReportRow(RULE, "2.0", 1, 0, 1, {NOT_RELEVANT: 1})
    assert second.acceptance_rate == 0.0
    assert third == ReportRow("card.observation", "1.0+abc123", 1, 0, 0, {})
    assert third.acceptance_rate is None


def test_the_window_selects_cards_by_issue_time(store: FeedbackStore) -> None:
    store.record_cards(
        [
            card("early", issued_at=T0 - DAY),
            card("start", issued_at=T0),
            card("inside", issued_at=T0 + DAY),
            card("end", issued_at=T0 + 2 * DAY),
        ]
    )
    store.add_feedback(SERVICE, [accepted("early"), accepted("inside"), overridden("end")])
    (row,) = store.report(T0, T0 + 2 * DAY)
    assert (row.issued, row.accepted, row.overridden) == (2, 1, 0)
    (row,) = store.report(start=T0 + DAY)
    assert (row.issued, row.accepted, row.overridden) == (2, 1, 1)
    (row,) = store.report(end=T0)
    assert (row.issued, row.accepted, row.overridden) == (1, 1, 0)
    assert store.report(T0 + 3 * DAY) == []
