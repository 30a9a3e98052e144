"""Complaint text -> features, from the phrase lists in ``rules/phrases.yaml``.

Matching is done here in Python, not with engine ``$mt`` patterns (each reload of a
regex rule leaks memory in durable-rules). A phrase counts when it appears as whole
words in a clause and no negation cue ("denies", "not", "no") stands within a few words
before it in the same comma segment, so "denies restlessness" and "not relieved by
walking" do not fire the feature they mention, while "no rash, relieved by walking"
still states relief.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PhraseBook", "PhraseFile", "TextFeatures"]

_DENIAL_WINDOW = 2
"""A feature is *denied* only when the cue stands right before it ("not relieved")."""
_CLAUSE_BREAK = re.compile(r"[.;:!?\n]+|\bbut\b|\bhowever\b|\balthough\b")


class PhraseFile(BaseModel):
    """The schema of ``rules/phrases.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    regions: dict[str, list[str]]
    features: dict[str, list[str]]
    negations: list[str] = Field(min_length=1)
    negation_window: int = Field(default=4, ge=1, le=10)


@dataclass(frozen=True)
class TextFeatures:
    """What a text states: ``features`` affirmed, ``denied`` only ever negated.

    "Not relieved by walking" denies ``relieved_by_movement``: the akathisia pattern,
    which is different from a text that simply does not mention relief.
    """

    regions: frozenset[str]
    features: frozenset[str]
    denied: frozenset[str] = frozenset()
    stated_with: frozenset[tuple[str, str]] = frozenset()
    """(feature, region) pairs affirmed in one clause; region ``""`` when none is named."""

    def stated_for(self, feature: str, region: str) -> bool:
        """Whether ``feature`` was said of ``region``, or in a clause naming no region
        ("eczema on both legs" is no skin lesion of the back)."""
        return (feature, region) in self.stated_with or (feature, "") in self.stated_with


def _alternation(phrases: list[str]) -> re.Pattern[str]:
    ordered = sorted({p.strip().lower() for p in phrases if p.strip()}, key=len, reverse=True)
    body = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in ordered)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


class PhraseBook:
    """Compiled phrase lists; ``read(text)`` gives the regions and features it states."""

    def __init__(self, spec: PhraseFile) -> None:
        # one alternation over every region, longest phrase first, so "between the shoulder
        # blades" (back) is one hit and its "shoulder" (arms) never a second one
        self._region_of = {p.strip().lower(): n for n, ps in spec.regions.items() for p in ps}
        self._features = {name: _alternation(p) for name, p in spec.features.items()}
        self._any_region = _alternation([p for ps in spec.regions.values() for p in ps])
        self._negation = _alternation(spec.negations)
        self._window = spec.negation_window
        self.feature_names = frozenset(spec.features)

    @classmethod
    def load(cls, path: Path) -> PhraseBook:
        return cls(PhraseFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))))

    def read(self, *texts: str | None) -> TextFeatures:
        regions: set[str] = set()
        features: set[str] = set()
        negated: set[str] = set()
        stated: set[tuple[str, str]] = set()
        for text in texts:
            if not text:
                continue
            for clause in _CLAUSE_BREAK.split(text.lower()):
                named = {
                    self._region_of[" ".join(hit.group(0).split())]
                    for hit in self._any_region.finditer(clause)
                    if not self._negated(clause, hit.start(), self._window)
                }
                regions |= named
                for name, pattern in self._features.items():
                    for hit in pattern.finditer(clause):
                        if not self._negated(clause, hit.start(), self._window):
                            features.add(name)
                            stated.update((name, r) for r in named or {""})
                        elif self._negated(clause, hit.start(), _DENIAL_WINDOW):
                            negated.add(name)
        return TextFeatures(
            frozenset(regions),
            frozenset(features),
            frozenset(negated - features),
            frozenset(stated),
        )

    def mentions_region(self, *texts: str | None) -> bool:
        """Cheap pre-check: does any text name a body region (negation not considered)?"""
        return any(text and self._any_region.search(text.lower()) for text in texts)

    def _negated(self, clause: str, start: int, window: int) -> bool:
        """A negation cue among the ``window`` words before ``start``, within its comma
        segment ("no rash, relieved by walking" does not negate the relief)."""
        segment = clause[:start].rsplit(",", 1)[-1]
        before = " ".join(segment.split()[-window:])
        return self._negation.search(before) is not None
