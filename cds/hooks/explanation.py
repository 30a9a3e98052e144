"""The compact "why this card" kept with each issued card.

The rule that made the card, the rules version, and for each fact the rule bound its
structured attributes: codes, flags, numbers and dates. Free text (displays, bases,
sig text) and resource references are left out: the record keeps no record text and
nothing that identifies the patient. Day numbers (``*_day``, days since 1970-01-01)
become ISO dates.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["compact_explanation", "structured_attributes"]

_CODE = re.compile(r"[A-Za-z0-9_.:+-]{1,64}")
"""A code-like string: no spaces, no slash (so no resource reference or URL), short."""

_EPOCH = dt.date(1970, 1, 1)
_MAX_DAY = (dt.date.max - _EPOCH).days


def _value(key: str, value: Any) -> Any:
    """The value if it is structured, else None (dropped)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if key.endswith("_day") and isinstance(value, int) and 0 <= value <= _MAX_DAY:
            return (_EPOCH + dt.timedelta(days=value)).isoformat()
        return value if math.isfinite(value) else None
    if isinstance(value, str) and _CODE.fullmatch(value):
        return value
    return None


def structured_attributes(fact: Mapping[str, Any]) -> dict[str, Any]:
    """A fact's codes, flags, numbers and dates; ``fact`` (its type) first."""
    kept: dict[str, Any] = {"fact": str(fact.get("fact", "?"))}
    for key, raw in fact.items():
        if key in ("fact", "source") or "patient" in key:
            continue
        value = _value(key, raw)
        if value is not None:
            kept[key] = value
    return kept


def compact_explanation(rule_id: str, rules_version: str, firings: Iterable[Any]) -> dict[str, Any]:
    """The explanation of a card made by ``rule_id``: the facts its (first) firing bound."""
    for firing in firings:
        if firing.rule_id == rule_id:
            return {
                "rule": rule_id,
                "rules_version": rules_version,
                "stage": firing.stage,
                "bound": {
                    alias: structured_attributes(fact) for alias, fact in firing.bound.items()
                },
            }
    return {"rule": rule_id, "rules_version": rules_version, "bound": {}}
