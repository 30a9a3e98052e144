"""issued_cards.explanation: the compact "why this card" kept with each issued card.

Nullable: cards recorded before this revision have none, and the explanation endpoint
says so. Revises 0001 for now (the ops branch adds 0002; the chain is re-linked at merge).

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("issued_cards") as batch:
        batch.add_column(sa.Column("explanation", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issued_cards") as batch:
        batch.drop_column("explanation")
