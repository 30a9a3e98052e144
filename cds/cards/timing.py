"""A dosage's timing in words, for suggestion labels ("twice a day", "every 4 weeks").

Only simple schedules are put into words (a frequency per day, week, month or hours, or
a common timing code); anything else is ``None`` and the label shows mg/day alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cds.units import period_days

__all__ = ["how_often", "less_than_daily"]

_TIMING_CODES = {
    "QD": "once a day", "BID": "twice a day", "TID": "3 times a day", "QID": "4 times a day",
    "QHS": "at bedtime", "HS": "at bedtime", "QAM": "every morning", "AM": "every morning",
    "QPM": "every evening", "PM": "every evening", "WK": "once a week", "MO": "once a month",
}  # fmt: skip


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def how_often(timing: Any) -> str | None:
    """A Timing in words ("twice a day", "every 4 weeks"); ``None`` when not simple."""
    if not isinstance(timing, dict):
        return None
    repeat = timing.get("repeat")
    if isinstance(repeat, dict) and repeat.get("periodUnit") is not None:
        return _repeat_words(repeat)
    code = timing.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return _TIMING_CODES.get(coding["code"].upper())
    return None


def less_than_daily(dosages: Any) -> bool:
    """A single instruction given less often than once a day (an LAI every 4 weeks)."""
    if not isinstance(dosages, list) or len(dosages) != 1 or not isinstance(dosages[0], dict):
        return False
    timing = dosages[0].get("timing")
    if not isinstance(timing, dict):
        return False
    repeat = timing.get("repeat")
    if isinstance(repeat, dict) and repeat.get("periodUnit") is not None:
        frequency = _number(repeat.get("frequencyMax") or repeat.get("frequency") or 1)
        period = _number(repeat.get("period") or 1)
        days = period_days(str(repeat.get("periodUnit")))
        return bool(frequency and period and days and period * days > frequency + 1e-9)
    return how_often(timing) in {"once a week", "once a month"}


_PERIOD_WORDS = {1.0: "day", 7.0: "week", 30.0: "month"}


def _repeat_words(repeat: Mapping[str, Any]) -> str | None:
    frequency = _number(repeat.get("frequencyMax") or repeat.get("frequency") or 1)
    period = _number(repeat.get("period") or 1)
    days = period_days(str(repeat.get("periodUnit")))
    if frequency is None or period is None or days is None or frequency <= 0 or period <= 0:
        return None
    if days < 1:
        hours = period * days * 24 / frequency
        return f"every {hours:g} hours" if hours.is_integer() else None
    word = _PERIOD_WORDS.get(days)
    if word is None or not (frequency.is_integer() and period.is_integer()):
        return None
    if period == 1:
        times = {1.0: "once", 2.0: "twice"}.get(frequency, f"{frequency:g} times")
        return f"{times} a {word}"
    if frequency == 1:
        return f"every {period:g} {word}s"
    return None
