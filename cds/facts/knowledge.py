"""What the fact extractors read from a rules directory: value sets and phrase lists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cds.facts.phrases import PhraseLibrary
from cds.facts.terminology import Terminology

__all__ = ["Knowledge"]


@dataclass(frozen=True)
class Knowledge:
    terminology: Terminology
    phrases: PhraseLibrary

    @classmethod
    def load(cls, rules_dir: Path) -> Knowledge:
        return cls(
            terminology=Terminology.load(rules_dir / "valuesets"),
            phrases=PhraseLibrary.load(rules_dir / "phrases"),
        )
