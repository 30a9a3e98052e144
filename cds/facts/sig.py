"""Sig text -> mg/day, for orders whose dose is written only in words ("200mg bid").

One left-to-right scan with one compiled pattern (linear in the text, which is capped
at ``MAX_SIG_CHARS``) turns the text into tokens: doses ("0.5 g", "1-2 tabs"), rates
("bid", "every 4 weeks", "/day"), times of day ("qhs", "in the morning"), as-needed
cues, stated maxima ("max 4 tabs/day") and durations ("for 7 days", ignored). Each dose
takes the rates and times that follow it up to the next dose.

Anything the scan cannot account for makes the whole text unreadable (``None``): a
number that is no dose, rate or duration; a taper or titration ("then", "increase");
weight-based doses (mg/kg); two rates for one dose ("daily bid"); an as-needed dose
with no frequency or maximum. A misread dose is worse than an unknown one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cds.units import MASS_TO_MG, UNIT_DOSE_WORDS, VOLUME_TO_ML, normalise_unit

__all__ = ["MAX_SIG_CHARS", "SigDose", "as_ordered_text", "frequency_per_day", "read_sig"]

MAX_SIG_CHARS = 400
"""Longer texts are not sigs (notes pasted into the field): left unread."""


@dataclass(frozen=True)
class SigDose:
    """What a sig says: the total mg/day (the most, for as-needed or ranged doses),
    each administered dose with its administrations per day, and the words for a dose
    given less often than daily ("234 mg every 4 weeks")."""

    mg_per_day: float
    doses: tuple[tuple[float, float], ...]
    as_ordered: str | None = None


_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "twelve": "12",
    "once": "1 times", "twice": "2 times", "thrice": "3 times",
}  # fmt: skip
_FRACTIONS = {"\u00bd": " 0.5", "\u00bc": " 0.25", "\u00be": " 0.75"}
_NUM = r"\d+(?:\.\d+)?"
_EVERY = r"(?:every|each|q\.?)"

_UNIT_WORDS = sorted(
    {*MASS_TO_MG, *(u for u in UNIT_DOSE_WORDS if u.isalpha() and len(u) > 2), *VOLUME_TO_ML},
    key=len,
    reverse=True,
)
_UNITS = "|".join(re.escape(u) for u in _UNIT_WORDS)

# rates that name their count: (pattern, administrations per day from the match)
_RATES: list[tuple[str, Callable[[float], float]]] = [
    (r"{n}\s*(?:times|x)\s*(?:a|per|/|each)?\s*(?:day|daily|d)\b", lambda n: n),
    (r"{n}\s*(?:times|x)\s*(?:a|per|/|each)?\s*(?:week|wk)\b", lambda n: n / 7),
    (r"{n}\s*(?:times|x)\s*(?:a|per|/|each)?\s*(?:month|mo)\b", lambda n: n / 30),
    (rf"{_EVERY}\s*{{n}}\s*(?:hours|hour|hrs|hr|h)\b", lambda n: 24 / n),
    (rf"{_EVERY}\s*{{n}}\s*(?:days|day|d)\b", lambda n: 1 / n),
    (rf"{_EVERY}\s*{{n}}\s*(?:weeks|week|wks|wk|w)\b", lambda n: 1 / (7 * n)),
    (rf"{_EVERY}\s*{{n}}\s*(?:months|month|mo)\b", lambda n: 1 / (30 * n)),
]
_FIXED_RATES: dict[str, float] = {
    "daily": 1, "qd": 1, "q.d.": 1, "od": 1, "o.d.": 1, "every day": 1, "each day": 1,
    "per day": 1, "a day": 1, "/day": 1, "/d": 1, "q24h": 1, "once a day": 1,
    "bid": 2, "b.i.d.": 2, "bd": 2, "tid": 3, "t.i.d.": 3, "tds": 3, "qid": 4, "q.i.d.": 4,
    "every other day": 0.5, "every second day": 0.5, "alternate days": 0.5, "qod": 0.5,
    "weekly": 1 / 7, "every week": 1 / 7, "once a week": 1 / 7, "per week": 1 / 7,
    "/week": 1 / 7, "qw": 1 / 7, "qwk": 1 / 7, "fortnightly": 1 / 14,
    "monthly": 1 / 30, "every month": 1 / 30, "once a month": 1 / 30, "per month": 1 / 30,
    "/month": 1 / 30,
}  # fmt: skip
_WORD_RATES = [r for r in _FIXED_RATES if not r.startswith("/")]
_SLASH_RATES = [r for r in _FIXED_RATES if r.startswith("/")]
"""``300 mg/day``: a slash rate follows its unit with no space."""
_WHENS = [
    "in the morning", "every morning", "each morning", "in the evening", "every evening",
    "each evening", "at night", "every night", "each night", "nightly", "at bedtime",
    "before bed", "bedtime", "at noon", "midday", "qhs", "q.h.s.", "hs", "qam", "qpm",
    "mane", "nocte", "morning", "evening", "night", "am", "pm", "with breakfast",
    "with lunch", "with dinner", "with supper",
]  # fmt: skip
_PRN = ["as needed", "as required", "when required", "when needed", "if needed", "prn", "p.r.n."]
_REFUSE = [
    r"taper\w*", r"titrat\w*", r"then", r"increase\w*", r"decrease\w*", r"reduc\w*",
    r"wean\w*", r"until", r"followed by", r"as directed", r"sliding", r"alternating",
    r"loading", r"per kg", r"biweekly", r"bi-weekly", r"day\s+\d", r"week\s+\d", r"or as",
]  # fmt: skip
_REFUSE_SYMBOLS = [r"/\s*kg", r"/\s*m2", r"\d,\d", r"\d+\s*/\s*\d+"]
"""Weight- or area-based doses, decimal commas, fractions other than 1/2: unread."""


def _alternation(words: list[str]) -> str:
    ordered = sorted(words, key=len, reverse=True)
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in ordered)


_TOKEN = re.compile(
    "|".join(
        [
            rf"(?P<refuse>(?<![\w.])(?:{'|'.join(_REFUSE)})(?![\w])|{'|'.join(_REFUSE_SYMBOLS)})",
            rf"(?P<duration>\b(?:for|x)\s*{_NUM}\s*(?:days|day|d|weeks|week|wks|wk|months|month)\b)",
            rf"(?P<max>\b(?:max(?:imum)?|not\s+to\s+exceed|no\s+more\s+than|nte|up\s+to)\s*(?:of\s*)?"
            rf"(?P<max_n>{_NUM})\s*(?P<max_unit>{_UNITS})\s*(?:/|per|in|a|every|each)\s*"
            rf"(?:24\s*(?:hours|hrs|h)|day|d)\b)",
            rf"(?P<dose>(?<![\w.])(?P<low>{_NUM})(?:\s*(?:-|to)\s*(?P<high>{_NUM}))?\s*"
            rf"(?P<unit>{_UNITS})(?![a-z]))",
            *(
                f"(?P<rate{i}>(?<![\\w.]){pattern.format(n=f'(?P<n{i}>{_NUM})')})"
                for i, (pattern, _) in enumerate(_RATES)
            ),
            rf"(?P<fixed>(?<![\w.])(?:{_alternation(_WORD_RATES)})(?![\w])"
            rf"|(?:{_alternation(_SLASH_RATES)})(?![\w]))",
            rf"(?P<when>(?<![\w.])(?:{_alternation(_WHENS)})(?![\w]))",
            rf"(?P<prn>(?<![\w.])(?:{_alternation(_PRN)})(?![\w]))",
            rf"(?P<number>{_NUM})",
        ]
    )
)
_WHITESPACE = re.compile(r"\s+")
_FIXED_KEYS = {" ".join(k.split()): v for k, v in _FIXED_RATES.items()}
_WORD_NUMBERS = re.compile(rf"\b(?:{'|'.join(_NUMBER_WORDS)})\b")
_HALVES = re.compile(r"\b(?:one[\s-]half|a\s+half|half\s+(?:a|an))\b|\bhalf\b")
_A_UNIT = re.compile(r"\b(?:a|an)\s+(tablet|tab|capsule|cap|pill|caplet)\b")


def _normalised(text: str) -> str:
    text = normalise_unit(text)
    for glyph, value in _FRACTIONS.items():
        text = text.replace(glyph, value)
    text = re.sub(r"\b1\s*/\s*2\b", "0.5", text)
    text = _HALVES.sub(" 0.5 ", text)
    text = _A_UNIT.sub(r"1 \1", text)
    text = _WORD_NUMBERS.sub(lambda m: _NUMBER_WORDS[m[0]], text)
    return _WHITESPACE.sub(" ", text)


@dataclass
class _Dose:
    mg: float | None
    unit_doses: float | None
    rates: list[float]
    whens: set[str]


def _dose_mg(
    amount: float, unit: str, strength_mg: float | None, mg_per_ml: float | None
) -> tuple[float | None, float | None]:
    """(mg, unit doses) of one dose mention; mg is ``None`` when no strength tells it."""
    if unit in MASS_TO_MG:
        return amount * MASS_TO_MG[unit], None
    if unit in VOLUME_TO_ML:
        ml = amount * VOLUME_TO_ML[unit]
        return (ml * mg_per_ml if mg_per_ml is not None else None), None
    return (amount * strength_mg if strength_mg is not None else None), amount


@dataclass
class _Reading:
    doses: list[_Dose]
    leading: _Dose
    """Rates and times written before any dose ("at bedtime take 50 mg", or a timing's
    own words)."""
    prn: bool
    maximum: float | None


def _tokens(text: str, strength_mg: float | None, mg_per_ml: float | None) -> _Reading | None:
    """Doses with their rates and times, whether as needed, and any stated daily maximum;
    ``None`` when the text holds something unreadable."""
    doses: list[_Dose] = []
    leading = _Dose(None, None, [], set())
    prn = False
    maximum: float | None = None
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or ""
        current = doses[-1] if doses else leading
        if kind in ("refuse", "number"):
            return None
        if kind == "dose":
            amount = float(match["high"] or match["low"])
            if match["high"] is not None and float(match["high"]) < float(match["low"]):
                return None
            mg, units = _dose_mg(amount, match["unit"], strength_mg, mg_per_ml)
            if doses and not current.rates and not current.whens:
                merged = _same_dose(current, mg, units)  # "1 tablet (50 mg)"
                if merged is None:
                    return None
                doses[-1] = merged
                continue
            doses.append(_Dose(mg, units, [], set()))
        elif kind == "max":
            factor = MASS_TO_MG.get(match["max_unit"])
            amount = float(match["max_n"])
            if factor is None:
                mg, _ = _dose_mg(amount, match["max_unit"], strength_mg, mg_per_ml)
                if mg is None:
                    return None
                maximum = mg
            else:
                maximum = amount * factor
        elif kind == "fixed":
            current.rates.append(_FIXED_KEYS[" ".join(match[0].split())])
        elif kind == "when":
            current.whens.add(" ".join(match[0].split()))
        elif kind == "prn":
            prn = True
        elif kind.startswith("rate"):
            index = int(kind[4:])
            count = float(match[f"n{index}"])
            if count <= 0:
                return None
            current.rates.append(_RATES[index][1](count))
    return _Reading(doses, leading, prn, maximum)


def _same_dose(pending: _Dose, mg: float | None, units: float | None) -> _Dose | None:
    """Two mentions of one dose of different kinds ("1 tab (50 mg)"), when they agree."""
    if (pending.unit_doses is None) == (units is None):
        return None
    count = pending.unit_doses if pending.unit_doses is not None else units
    if count != 1 and (pending.mg is None or mg is None):
        return None  # "25 mg 2 tabs": the mg of one tablet or of both? unknown
    if pending.mg is not None and mg is not None and abs(pending.mg - mg) > 1e-6:
        return None
    return _Dose(
        pending.mg if pending.mg is not None else mg,
        pending.unit_doses if pending.unit_doses is not None else units,
        [],
        set(),
    )


def _per_day(dose: _Dose) -> float | None:
    if len(dose.rates) > 1:
        return None
    if dose.rates:
        rate = dose.rates[0]
        # "bid morning and night" agrees; "daily morning and night" does not
        return rate if len(dose.whens) <= max(rate, 1) else None
    return float(len(dose.whens)) if dose.whens else None


def read_sig(
    text: str | None, strength_mg: float | None = None, mg_per_ml: float | None = None
) -> SigDose | None:
    """The mg/day a sig states, or ``None`` when it cannot be read for certain."""
    if not text or len(text) > MAX_SIG_CHARS:
        return None
    found = _tokens(_normalised(text), strength_mg, mg_per_ml)
    if found is None:
        return None
    doses, prn, maximum, leading = found.doses, found.prn, found.maximum, found.leading
    if leading.rates or leading.whens:  # "at bedtime take 50 mg"
        if len(doses) != 1 or doses[0].rates or doses[0].whens:
            return None
        doses[0].rates, doses[0].whens = leading.rates, leading.whens
    pairs: list[tuple[float, float]] = []
    for dose in doses:
        per_day = _per_day(dose)
        if dose.mg is None or per_day is None:
            if prn and maximum is not None and len(doses) == 1:
                return SigDose(maximum, ())
            return None
        pairs.append((dose.mg, per_day))
    if not pairs:
        return SigDose(maximum, ()) if prn and maximum is not None else None
    if len(pairs) > 1 and "(" in text:
        return None  # "400 mg bid (0.8 g/day)" restates a total: a second dose or not?
    total = sum(mg * per_day for mg, per_day in pairs)
    if maximum is not None:
        if prn:
            total = min(total, maximum)
        elif total > maximum + 1e-6:
            return None
    as_ordered = as_ordered_text(*pairs[0]) if len(pairs) == 1 else None
    return SigDose(round(total, 3), tuple(pairs), as_ordered)


def frequency_per_day(text: str | None) -> float | None:
    """Administrations per day a timing's words state ("twice daily", "every 4 weeks",
    "at bedtime"), for a ``Timing.code`` known only by its text."""
    if not text or len(text) > MAX_SIG_CHARS:
        return None
    found = _tokens(_normalised(text), None, None)
    if found is None or found.doses or found.maximum is not None:
        return None
    return _per_day(found.leading)


def as_ordered_text(mg: float, per_day: float) -> str | None:
    """How a prescriber writes a dose given less often than daily: "234 mg every 4
    weeks"; ``None`` for daily or more often (mg/day says it)."""
    if per_day <= 0 or per_day >= 1:
        return None
    days = 1 / per_day
    if abs(days - round(days)) > 1e-6:
        return None
    whole = round(days)
    if whole % 7 == 0:
        weeks = whole // 7
        interval = "every week" if weeks == 1 else f"every {weeks} weeks"
    elif whole == 30:
        interval = "every month"
    else:
        interval = f"every {whole} days"
    amount = int(mg) if float(mg).is_integer() else round(mg, 3)
    return f"{amount} mg {interval}"
