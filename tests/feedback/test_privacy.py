"""No table holds a patient id or a clinician's free text."""

from __future__ import annotations

from sqlalchemy import inspect, text

from cds.feedback import FeedbackStore, pseudonymise
from tests.feedback.support import KEY, SERVICE, card, overridden

PATIENT_ID = "pt-secret-123"


def every_value(store: FeedbackStore) -> list[str]:
    """Every value of every column of every table, as text."""
    values: list[str] = []
    with store.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"'))
            values.extend(str(value) for row in rows for value in row)
    return values


def test_no_table_contains_the_patient_id(store: FeedbackStore) -> None:
    pseudonym = pseudonymise(KEY, PATIENT_ID)
    store.record_cards([card("c1", patient_pseudonym=pseudonym, hook_instance="h-1")])
    store.add_feedback(SERVICE, [overridden("c1", has_comment=True)])
    assert store.suppressed_rules(pseudonym, card("c1").issued_at)  # a suppression row exists
    values = every_value(store)
    assert pseudonym in values  # the scan sees the data
    assert not [value for value in values if PATIENT_ID in value]
