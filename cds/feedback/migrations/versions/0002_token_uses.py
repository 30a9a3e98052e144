"""The shared jti replay cache: token_uses (issuer, jti, expires_at).

Every replica records each accepted token id here, so a token replayed to another
replica or worker is refused; rows past their expiry are deleted as new ones arrive.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "token_uses",
        sa.Column("issuer", sa.String(), nullable=False),
        sa.Column("jti", sa.String(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti", name=op.f("pk_token_uses")),
    )
    op.create_index(op.f("ix_token_uses_expires_at"), "token_uses", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_token_uses_expires_at"), table_name="token_uses")
    op.drop_table("token_uses")
