"""Indexes for retention: suppressions by expiry and by the card that set them.

``FeedbackStore.prune`` deletes expired suppressions (``until``), then old cards that no
live suppression names: without ``ix_suppressions_card_uuid`` each card deleted would
scan the suppressions (the NOT EXISTS and PostgreSQL's foreign-key check alike).

Repeated calls of one hook instance no longer add card rows, with no column added: the
card uuid is derived from what makes a card the same (``cds.hooks.feedback``), so the
primary key is that unique key and the insert is ``ON CONFLICT DO NOTHING``.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_suppressions_until"), "suppressions", ["until"])
    op.create_index(op.f("ix_suppressions_card_uuid"), "suppressions", ["card_uuid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_suppressions_card_uuid"), table_name="suppressions")
    op.drop_index(op.f("ix_suppressions_until"), table_name="suppressions")
