"""CDS Hooks feedback (CDS Hooks 2.0 #feedback): what became of the cards we issued.

The service records each card it returns (``FeedbackStore.record_cards``), the EHR later
reports whether the clinician accepted or overrode it (``add_feedback``), and an override
whose reason means "already addressed" silences that rule for that patient for a while
(``suppressed_rules``). ``report`` gives acceptance per rule and rules version, so rule
authors can see which cards are heeded and why the others are not.

Nothing stored identifies a patient: ids go in as keyed pseudonyms (``pseudonymise``) and
the clinician's free-text comment is reduced to whether there was one. The schema is
created and upgraded by Alembic migrations shipped in ``migrations/`` whenever a store opens.
"""

from cds.feedback.cache import Rows, SuppressionCache
from cds.feedback.dashboard import DashboardData, card_explanation, dashboard_data
from cds.feedback.errors import UnknownCardError
from cds.feedback.pseudonym import pseudonymise
from cds.feedback.records import (
    FeedbackRecord,
    FeedbackResult,
    IssuedCardRecord,
    Outcome,
    PruneResult,
    ReportRow,
)
from cds.feedback.report import render_report
from cds.feedback.store import FeedbackStore, content_hash
from cds.feedback.writer import CardWriter, PeriodicJob

__all__ = [
    "CardWriter",
    "DashboardData",
    "FeedbackRecord",
    "FeedbackResult",
    "FeedbackStore",
    "IssuedCardRecord",
    "Outcome",
    "PeriodicJob",
    "PruneResult",
    "ReportRow",
    "Rows",
    "SuppressionCache",
    "UnknownCardError",
    "card_explanation",
    "content_hash",
    "dashboard_data",
    "pseudonymise",
    "render_report",
]
