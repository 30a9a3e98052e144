"""Aggregates for the rule-author dashboard: counts per rule, version and day.

Only aggregates and card uuids leave here: no pseudonym, no patient, no record text.
"Issued" counts distinct cards (one per rule per hook instance: a re-fire of the same
hook instance with the same draft gives the same rule a new uuid, so a card an EHR asks
for twice counts twice; see README "Feedback terms").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from cds.feedback.models import Feedback, IssuedCard, Suppression
from cds.feedback.store import FeedbackStore

__all__ = ["OVERRIDE_LIMIT", "DashboardData", "card_explanation", "dashboard_data"]

OVERRIDE_LIMIT = 200
"""The newest overrides listed with links to their explanations (older ones are counted)."""


@dataclass(frozen=True)
class DashboardData:
    """What the dashboard shows for one date range, JSON-ready."""

    start: date
    end: date
    rows: list[dict[str, Any]]
    daily: list[dict[str, Any]]
    overrides: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "daily": self.daily,
            "overrides": self.overrides,
        }


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after end 00:00 UTC): ``end`` is inclusive."""
    low = datetime(start.year, start.month, start.day, tzinfo=UTC)
    high = datetime(end.year, end.month, end.day, tzinfo=UTC)
    return low, high + timedelta(days=1)


def dashboard_data(store: FeedbackStore, start: date, end: date) -> DashboardData:
    """Cards issued per rule and version (per day too), their feedback, and suppressions
    set, for cards issued between ``start`` and ``end`` (inclusive, UTC days)."""
    low, high = _bounds(start, end)
    reports = store.report(low, high)
    rows = [
        {
            "rule": r.rule_id,
            "rules_version": r.rules_version,
            "issued": r.issued,
            "accepted": r.accepted,
            "overridden": r.overridden,
            "acceptance_rate": r.acceptance_rate,
            "override_rate": None if r.issued == 0 else r.overridden / r.issued,
            "override_reasons": r.override_reasons,
        }
        for r in reports
    ]
    with store.engine.connect() as connection:
        suppressed = dict(
            connection.execute(
                select(Suppression.rule_id, func.count())
                .where(Suppression.updated_at >= low, Suppression.updated_at < high)
                .group_by(Suppression.rule_id)
            ).all()
        )
        issued = connection.execute(
            select(IssuedCard.issued_at, IssuedCard.rule_id, IssuedCard.rules_version).where(
                IssuedCard.issued_at >= low, IssuedCard.issued_at < high
            )
        )
        daily_counts: dict[tuple[str, str, str], int] = {}
        for issued_at, rule_id, version in issued:
            key = (issued_at.astimezone(UTC).date().isoformat(), rule_id, version)
            daily_counts[key] = daily_counts.get(key, 0) + 1
        overrides = connection.execute(
            select(
                IssuedCard.card_uuid,
                IssuedCard.service_id,
                IssuedCard.rule_id,
                IssuedCard.rules_version,
                Feedback.override_code,
                Feedback.outcome_timestamp,
            )
            .join(Feedback, Feedback.card_uuid == IssuedCard.card_uuid)
            .where(
                Feedback.outcome == "overridden",
                IssuedCard.issued_at >= low,
                IssuedCard.issued_at < high,
            )
            .order_by(Feedback.outcome_timestamp.desc())
            .limit(OVERRIDE_LIMIT)
        ).all()
    for row, report_row in zip(rows, reports, strict=True):
        row["suppressions_set"] = suppressed.get(report_row.rule_id, 0)
    daily = [
        {"day": day, "rule": rule, "rules_version": version, "issued": count}
        for (day, rule, version), count in sorted(daily_counts.items())
    ]
    listed = [
        {
            "card": uuid,
            "service": service,
            "rule": rule,
            "rules_version": version,
            "reason": code,
            "at": when.astimezone(UTC).isoformat(timespec="seconds"),
            "explanation": f"/cds-services/{service}/cards/{uuid}/explanation",
        }
        for uuid, service, rule, version, code, when in overrides
    ]
    return DashboardData(start, end, rows, daily, listed)


def card_explanation(
    store: FeedbackStore, service_id: str, card_uuid: str
) -> dict[str, Any] | None:
    """The stored explanation of a card ``service_id`` issued; None if it issued no such
    card. A card recorded before explanations were kept gives ``{"explanation": None}``."""
    statement = select(
        IssuedCard.rule_id, IssuedCard.rules_version, IssuedCard.issued_at, IssuedCard.explanation
    ).where(IssuedCard.card_uuid == card_uuid, IssuedCard.service_id == service_id)
    with store.engine.connect() as connection:
        found = connection.execute(statement).first()
    if found is None:
        return None
    rule_id, version, issued_at, explanation = found
    return {
        "card": card_uuid,
        "service": service_id,
        "rule": rule_id,
        "rules_version": version,
        "issued_at": issued_at.astimezone(UTC).isoformat(timespec="seconds"),
        "explanation": explanation,
    }
