"""The feedback tables: issued_cards, feedback, suppressions.

Written by hand to match ``cds.feedback.models`` as of this revision; the schema test
(``tests/feedback/test_migrations.py``) fails if the two drift apart. Later revisions
must not import the models: they change, a migration may not. Names are wrapped in
``op.f`` so the models' naming convention is not applied to them a second time.

Revision ID: 0001
Revises: -
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_FEEDBACK_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "issued_cards",
        sa.Column("card_uuid", sa.String(), nullable=False),
        sa.Column("service_id", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("rules_version", sa.String(), nullable=False),
        sa.Column("hook_instance", sa.String(), nullable=False),
        sa.Column("issued_at", _utc(), nullable=False),
        sa.Column("patient_pseudonym", sa.String(64), nullable=False),
        sa.Column("suppress_days", sa.Float(), nullable=True),
        sa.Column("suppress_reasons", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("card_uuid", name=op.f("pk_issued_cards")),
    )
    op.create_index(op.f("ix_issued_cards_issued_at"), "issued_cards", ["issued_at"])
    op.create_index(
        op.f("ix_issued_cards_rule_id_rules_version"), "issued_cards", ["rule_id", "rules_version"]
    )

    op.create_table(
        "feedback",
        sa.Column("id", _FEEDBACK_ID, autoincrement=True, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("card_uuid", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_timestamp", _utc(), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_system", sa.String(), nullable=True),
        sa.Column("override_code", sa.String(), nullable=True),
        sa.Column("override_display", sa.String(), nullable=True),
        sa.Column("has_comment", sa.Boolean(), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_feedback_content_hash")),
        sa.ForeignKeyConstraint(
            ["card_uuid"],
            ["issued_cards.card_uuid"],
            name=op.f("fk_feedback_card_uuid_issued_cards"),
        ),
        sa.CheckConstraint(
            "outcome IN ('accepted', 'overridden')", name=op.f("ck_feedback_outcome")
        ),
    )
    op.create_index(op.f("ix_feedback_card_uuid"), "feedback", ["card_uuid"])

    op.create_table(
        "suppressions",
        sa.Column("patient_pseudonym", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("until", _utc(), nullable=False),
        sa.Column("card_uuid", sa.String(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("patient_pseudonym", "rule_id", name=op.f("pk_suppressions")),
        sa.ForeignKeyConstraint(
            ["card_uuid"],
            ["issued_cards.card_uuid"],
            name=op.f("fk_suppressions_card_uuid_issued_cards"),
        ),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_index(op.f("ix_feedback_card_uuid"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index(op.f("ix_issued_cards_rule_id_rules_version"), table_name="issued_cards")
    op.drop_index(op.f("ix_issued_cards_issued_at"), table_name="issued_cards")
    op.drop_table("issued_cards")
