"""Card templates as rule authors write them in rule files (the ``cards:`` section).

Text fields are Python format strings over the values a card rule passes (``{drug}``);
the engine's rule compiler checks every placeholder is supplied. Strict on purpose
(``extra='forbid'``): a misspelt field in a clinician's file is an error, not a silence.
"""

from __future__ import annotations

import math
import re
import string
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

__all__ = [
    "MAX_SUMMARY_LENGTH",
    "SIGN_SPEC",
    "CardTemplate",
    "EvidenceSource",
    "OverrideReasonSpec",
    "Section",
    "SuggestionSpec",
    "SuppressionSpec",
    "by_sign",
    "placeholders",
    "sentence_problems",
    "sign_spec_problems",
]

MAX_SUMMARY_LENGTH = 139
"""CDS Hooks 2.0 #card-attributes: summary SHALL be under 140 characters."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceSource(_Strict):
    """A publication a rule or card rests on, linked from the card."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    label: str = Field(min_length=3, max_length=80, description="link text on the card")
    citation: str = Field(min_length=10)
    url: HttpUrl


class OverrideReasonSpec(_Strict):
    """One reason a clinician may give for not following the card."""

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    display: str = Field(min_length=3, max_length=120)


class SuggestionSpec(_Strict):
    """A change the clinician can accept; the card renderer builds its FHIR action.

    ``reduce-dose`` rewrites the draft MedicationRequest bound as ``order`` with each
    dose lowered by ``fraction`` (a number or a ``config.`` name). The card values it
    reads are declared here (``order``, ``dose``, ``current_dose``) and the rules
    compiler checks every card rule using the template supplies them, so no card loses
    its suggestions to a value the rule never passed.
    """

    kind: Literal["reduce-dose"]
    label: str = Field(min_length=3, max_length=120)
    fraction: Annotated[float, Field(gt=0, lt=1)] | str
    order: str = Field(default="order", description="card value holding the draft's reference")
    dose: str = Field(default="mg_per_day", description="card value: the ordered mg/day")
    current_dose: str | None = Field(
        default="current_mg",
        description="card value: the current mg/day (null: suggest from the ordered dose)",
    )

    @property
    def inputs(self) -> set[str]:
        """The card values the suggestion reads."""
        names = {self.order, self.dose}
        if self.current_dose is not None:
            names.add(self.current_dose)
        return names


class Section(_Strict):
    """A paragraph shown only when the session derived facts of type ``fact``; ``{list}``
    becomes their ``attribute`` values, joined (e.g. the secondary causes on record)."""

    fact: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    attribute: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str = Field(min_length=5)
    sources: list[str] = Field(
        default_factory=list, description="evidence linked from the card when the section shows"
    )


class SuppressionSpec(_Strict):
    """After an override with one of ``override_reasons`` (codes of this card's reasons
    that mean "already addressed"), the rule stays silent for that patient ``days``
    (a number or a ``config.`` name)."""

    override_reasons: list[str] = Field(min_length=1)
    days: float | str = "config.suppression_days"


class CardTemplate(_Strict):
    """How one kind of card reads; placeholders are filled from the firing rule."""

    indicator: Literal["info", "warning", "critical"]
    summary: str = Field(min_length=5)
    detail: str = Field(min_length=5)
    sources: list[str] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    suggestion: SuggestionSpec | None = None
    override_reasons: list[OverrideReasonSpec] = Field(default_factory=list)
    suppression: SuppressionSpec | None = None
    dedupe_on: list[str] = Field(
        default_factory=list,
        description="values that identify one finding; one card per finding per response",
    )


def placeholders(text: str) -> set[str]:
    """Names used as ``{name}`` or ``{name:fmt}`` in a format string."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


SIGN_SPEC = "sign:"
"""``{x:sign:above|zero|below|unknown}`` words a number by its sign (a dose change)."""

_SIGN_CHOICES = 4


def by_sign(value: float | None, choices: str) -> str:
    """The choice of ``above|zero|below|unknown`` for ``value``; a value shown as 0 at
    the cards' precision (2 decimals) counts as zero."""
    above, zero, below, unknown = (choices.split("|") + [""] * _SIGN_CHOICES)[:_SIGN_CHOICES]
    if value is None or not math.isfinite(value):
        return unknown
    shown = round(value, 2)
    return above if shown > 0 else below if shown < 0 else zero


def sign_spec_problems(text: str) -> list[str]:
    """``{x:sign:...}`` placeholders that do not offer exactly four choices."""
    return [
        f"{{{name}:{spec}}} needs four choices: above|zero|below|unknown"
        for _, name, spec, _ in string.Formatter().parse(text)
        if name
        and spec
        and spec.startswith(SIGN_SPEC)
        and len(spec.removeprefix(SIGN_SPEC).split("|")) != _SIGN_CHOICES
    ]


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"\u201d)]*\s+|\n\s*\n")
_NOT_AN_END = ("e.g.", "i.e.", "al.", "vs.", "approx.")
_LEAD = re.compile(r"^[\s*_\"\u201c(>-]*")


def sentence_problems(text: str) -> list[str]:
    """Sentences of a card text that start with a lower-case letter or a placeholder.

    A placeholder's value (an ingredient such as "sertraline", record text) may be lower
    case, so a sentence must not begin with one: the card would read "sertraline is...".
    """
    problems = []
    start = 0
    for match in [*_SENTENCE_END.finditer(text), None]:
        end = match.start() if match else len(text)
        sentence = text[start:end]
        if match is not None and sentence.rstrip().endswith(_NOT_AN_END):
            continue  # an abbreviation, not the end of a sentence
        head = _LEAD.sub("", sentence, count=1)
        if head.startswith("{"):
            name = head[1:].split("}", 1)[0].split(":", 1)[0]
            problems.append(f"a sentence starts with {{{name}}}, whose value may be lower case")
        elif head[:1].islower():
            problems.append(f"a sentence starts with a lower-case letter: {head[:30]!r}")
        start = match.end() if match else len(text)
    return problems
