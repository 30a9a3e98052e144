"""Values in ``where`` and ``with``: literals, references, offsets, config, differences."""

from __future__ import annotations

from typing import Any

import pytest

from cds.engine.expressions import Const, ExpressionError, Ref, parse_value

ALIASES = frozenset({"exposure", "complaint"})
CONFIG = {"onset_window_days": 90, "fraction": 0.333, "label": "x", "flag": True}


def parse(raw: Any) -> Any:
    return parse_value(raw, ALIASES, CONFIG)


@pytest.mark.parametrize(
    "raw",
    [12, 1.5, True, False, None, "antipsychotic", "coded diagnosis", "12", "e.g. this", "a.b.c"],
)
def test_literals_stay_literal(raw: Any) -> None:
    assert parse(raw) == Const(raw)


def test_reference() -> None:
    assert parse("exposure.start_day") == Ref("exposure", "start_day")
    assert parse("  exposure.start_day  ") == Ref("exposure", "start_day")


@pytest.mark.parametrize(
    ("raw", "offset"),
    [
        ("exposure.start_day + 7", 7.0),
        ("exposure.start_day+7", 7.0),
        ("exposure.start_day - 2.5", -2.5),
        ("exposure.start_day + config.onset_window_days", 90.0),
        ("exposure.start_day - config.onset_window_days", -90.0),
    ],
)
def test_reference_with_offset(raw: str, offset: float) -> None:
    value = parse(raw)
    assert value == Ref("exposure", "start_day", offset)
    assert value.minus is None


def test_config_value() -> None:
    assert parse("config.onset_window_days") == Const(90)
    assert parse("config.fraction") == Const(0.333)
    assert parse("config.flag") == Const(True)


def test_difference_of_two_references() -> None:
    value = parse("complaint.onset_day - exposure.start_day")
    assert value == Ref("complaint", "onset_day", 0, minus=("exposure", "start_day"))


def test_sum_of_two_references_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="not a number"):
        parse("complaint.onset_day + exposure.start_day")


@pytest.mark.parametrize(
    "raw",
    ["exposur.start_day", "med.drug + 3", "exposure.start_day - med.day"],
)
def test_unbound_alias_is_an_error(raw: str) -> None:
    with pytest.raises(ExpressionError):
        parse(raw)


def test_unbound_alias_message_names_it() -> None:
    with pytest.raises(ExpressionError, match=r"'exposur'.*no earlier condition binds"):
        parse("exposur.start_day")


def test_aliases_decide_what_is_bound() -> None:
    assert parse_value("med.drug", {"med"}, {}) == Ref("med", "drug")
    with pytest.raises(ExpressionError):
        parse_value("med.drug", set(), {})


@pytest.mark.parametrize(
    "raw", ["config.window", "exposure.start_day + config.window", "exposure.start_day - config.x"]
)
def test_unknown_config_key_is_an_error(raw: str) -> None:
    with pytest.raises(ExpressionError, match=r"config\.\w+ is not defined"):
        parse(raw)


def test_arithmetic_on_config_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="only allowed on a bound fact"):
        parse("config.onset_window_days + 1")


@pytest.mark.parametrize("raw", ["exposure.start_day + soon", "exposure.start_day + config.label"])
def test_non_numeric_offset_is_an_error(raw: str) -> None:
    with pytest.raises(ExpressionError, match="not a number"):
        parse(raw)


def test_expression_error_is_a_value_error() -> None:
    # the compiler catches ValueError for every located problem in a where clause
    assert issubclass(ExpressionError, ValueError)
