"""The boundary values: pseudonyms, and the checks the records make when built."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cds.errors import CdsError
from cds.feedback import FeedbackRecord, ReportRow, UnknownCardError, pseudonymise
from tests.feedback.support import T0, card


def test_pseudonym_is_a_keyed_hmac_in_hex() -> None:
    first = pseudonymise(b"key-one", "pt-secret-123")
    assert first == pseudonymise(b"key-one", "pt-secret-123")
    assert len(first) == 64
    assert set(first) <= set("0123456789abcdef")
    assert "pt-secret-123" not in first


def test_different_keys_give_different_pseudonyms() -> None:
    assert pseudonymise(b"key-one", "pt-1") != pseudonymise(b"key-two", "pt-1")
    assert pseudonymise(b"key-one", "pt-1") != pseudonymise(b"key-one", "pt-2")


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        pseudonymise(b"", "pt-1")


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 3, 1, 9, 0)
    with pytest.raises(ValueError, match="issued_at"):
        card("c1", issued_at=naive)
    with pytest.raises(ValueError, match="outcome_timestamp"):
        FeedbackRecord("c1", "accepted", naive)


def test_datetimes_are_normalised_to_utc() -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    record = FeedbackRecord("c1", "accepted", plus_two)
    assert record.outcome_timestamp == T0
    assert record.outcome_timestamp.utcoffset() == timedelta(0)


def test_an_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        FeedbackRecord("c1", "ignored", T0)  # type: ignore[arg-type]


def test_sequences_become_tuples() -> None:
    record = FeedbackRecord("c1", "accepted", T0, accepted_suggestions=["s1"])  # type: ignore[arg-type]
    assert record.accepted_suggestions == ("s1",)
    assert card("c1", suppress_reasons=["r"]).suppress_reasons == ("r",)


@pytest.mark.parametrize("days", [-1.0, float("nan"), float("inf")])
def test_suppress_days_must_be_finite_and_not_negative(days: float) -> None:
    with pytest.raises(ValueError, match="suppress_days"):
        card("c1", suppress_days=days)


def test_acceptance_rate() -> None:
    assert ReportRow("r", "v", 3, 0, 0).acceptance_rate is None
    assert ReportRow("r", "v", 5, 3, 1).acceptance_rate == 0.75
    assert ReportRow("r", "v", 1, 0, 1).acceptance_rate == 0.0


def test_unknown_card_error_is_a_cds_error_naming_the_cards() -> None:
    error = UnknownCardError(["a", "b"])
    assert isinstance(error, CdsError)
    assert error.card_uuids == ["a", "b"]
    assert "a, b" in str(error)
