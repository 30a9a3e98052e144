"""Values in ``where`` and ``with``: literals, references to bound facts, config numbers.

- ``exposure.start_day``: attribute ``start_day`` of the fact bound as ``exposure``;
- ``exposure.start_day + config.onset_window_days``: the same plus a number or setting;
- ``complaint.onset_day - exposure.start_day``: a difference of two bound attributes
  (in ``with`` only: the engine cannot compare against one);
- ``config.dose_reduction_fraction``: a setting from ``config.yaml``;
- anything else (``true``, ``12``, ``antipsychotic``) is a literal.
A string shaped like ``name.attribute`` whose name is neither bound nor ``config`` is an
error rather than a literal, so a misspelt alias cannot silently match nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

__all__ = ["Const", "ExpressionError", "Ref", "Value", "parse_value"]

_SHAPE = re.compile(
    r"^\s*(?P<name>[a-z][a-z0-9_]*)\.(?P<attr>[a-z][a-z0-9_]*)"
    r"\s*(?:(?P<op>[+-])\s*(?P<operand>\S+))?\s*$"
)


class ExpressionError(ValueError):
    """A value expression refers to something that does not exist."""


@dataclass(frozen=True)
class Ref:
    """An attribute of a bound fact, optionally shifted by a constant."""

    alias: str
    attr: str
    offset: float = 0
    minus: tuple[str, str] | None = None


@dataclass(frozen=True)
class Const:
    value: Any


Value = Ref | Const


def parse_value(raw: Any, aliases: Set[str], config: Mapping[str, Any]) -> Value:
    """Parse one value written in a rule file."""
    if not isinstance(raw, str):
        return Const(raw)
    match = _SHAPE.match(raw)
    if match is None:
        return Const(raw)
    name, attr, op, operand = match["name"], match["attr"], match["op"], match["operand"]
    if name == "config":
        if op:
            raise ExpressionError(f"'{raw}': arithmetic is only allowed on a bound fact")
        return Const(_setting(config, attr))
    if name not in aliases:
        raise ExpressionError(f"'{raw}' refers to '{name}', which no earlier condition binds")
    if not op:
        return Ref(name, attr)
    other = _SHAPE.match(operand)
    if op == "-" and other and not other["op"] and other["name"] in aliases:
        return Ref(name, attr, minus=(other["name"], other["attr"]))
    amount = _number(operand, config)
    return Ref(name, attr, amount if op == "+" else -amount)


def _setting(config: Mapping[str, Any], name: str) -> Any:
    if name not in config:
        raise ExpressionError(f"config.{name} is not defined in config.yaml")
    return config[name]


def _number(operand: str, config: Mapping[str, Any]) -> float:
    value: Any = operand
    if operand.startswith("config."):
        value = _setting(config, operand.removeprefix("config."))
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ExpressionError(f"'{operand}' is not a number") from exc
