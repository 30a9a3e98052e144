"""The three feedback tables, as SQLAlchemy 2 declarative models.

``migrations/versions`` must create exactly this schema (a test compares them). No column
holds a patient id or free text: patients appear as HMAC pseudonyms, and a clinician's
comment only as ``has_comment``.

Datetimes go through ``UtcDateTime``: PostgreSQL keeps ``timestamptz``, but SQLite has no
time zones, so every value is converted to UTC on the way in and marked UTC on the way
out. Stored that way they also compare correctly as SQLite's text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "HEX_DIGEST_LENGTH",
    "NAMING_CONVENTION",
    "VERSION_TABLE",
    "Base",
    "Feedback",
    "IssuedCard",
    "Suppression",
    "UtcDateTime",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are spelled out so a migration can name what it alters later."""

VERSION_TABLE = "feedback_alembic_version"
"""Where Alembic records the schema revision; not the default ``alembic_version``, so another
migration tree may share the database."""

HEX_DIGEST_LENGTH = 64
"""Hex characters of a SHA-256 digest: a pseudonym, a content hash. Other strings have
no length limit: several come from the EHR, and a limit would turn a long value into a
database error."""


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC; naive values are refused, never assumed local."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: the feedback store needs timezone-aware values")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - the driver returns datetimes
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


FeedbackId = BigInteger().with_variant(Integer(), "sqlite")
"""SQLite only autoincrements an ``INTEGER PRIMARY KEY``."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IssuedCard(Base):
    """A card the service returned; feedback must name one of these."""

    __tablename__ = "issued_cards"
    __table_args__ = (
        Index("ix_issued_cards_issued_at", "issued_at"),
        Index("ix_issued_cards_rule_id_rules_version", "rule_id", "rules_version"),
    )

    card_uuid: Mapped[str] = mapped_column(String(), primary_key=True)
    service_id: Mapped[str] = mapped_column(String())
    rule_id: Mapped[str] = mapped_column(String())
    rules_version: Mapped[str] = mapped_column(String())
    hook_instance: Mapped[str] = mapped_column(String())
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    patient_pseudonym: Mapped[str] = mapped_column(String(HEX_DIGEST_LENGTH))
    suppress_days: Mapped[float | None] = mapped_column(Float())
    suppress_reasons: Mapped[list[str]] = mapped_column(JSON())
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON(), nullable=True)
    """Why the card fired, compactly: rule, rules version, the structured facts it bound
    (codes, flags, numbers, dates; never free text or a patient id). Revision 0003."""


class Feedback(Base):
    """One distinct feedback item; ``content_hash`` makes a resent item a no-op."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint("outcome IN ('accepted', 'overridden')", name="outcome"),
        Index("ix_feedback_card_uuid", "card_uuid"),
    )

    id: Mapped[int] = mapped_column(FeedbackId, primary_key=True, autoincrement=True)
    content_hash: Mapped[str] = mapped_column(String(HEX_DIGEST_LENGTH), unique=True)
    card_uuid: Mapped[str] = mapped_column(ForeignKey("issued_cards.card_uuid"))
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_timestamp: Mapped[datetime] = mapped_column(UtcDateTime())
    accepted_suggestions: Mapped[list[str]] = mapped_column(JSON())
    override_system: Mapped[str | None] = mapped_column(String())
    override_code: Mapped[str | None] = mapped_column(String())
    override_display: Mapped[str | None] = mapped_column(String())
    has_comment: Mapped[bool] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Suppression(Base):
    """A rule silenced for one patient until ``until`` (exclusive)."""

    __tablename__ = "suppressions"
    __table_args__ = (
        Index("ix_suppressions_until", "until"),  # revision 0004: pruning expired ones
        Index("ix_suppressions_card_uuid", "card_uuid"),  # 0004: pruning their cards
    )

    patient_pseudonym: Mapped[str] = mapped_column(String(HEX_DIGEST_LENGTH), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(), primary_key=True)
    until: Mapped[datetime] = mapped_column(UtcDateTime())
    card_uuid: Mapped[str] = mapped_column(ForeignKey("issued_cards.card_uuid"))
    """The overridden card that set the current ``until``."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TokenUse(Base):
    """A client JWT id seen by any replica, kept until the token expires (replay cache)."""

    __tablename__ = "token_uses"
    __table_args__ = (Index("ix_token_uses_expires_at", "expires_at"),)

    issuer: Mapped[str] = mapped_column(String(), primary_key=True)
    jti: Mapped[str] = mapped_column(String(), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
