"""What the fact extractors read from a rules directory: value sets and phrase lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cds.facts.labs import LabCodes
from cds.facts.phrases import PhraseLibrary
from cds.facts.terminology import Terminology

__all__ = ["Knowledge"]


@dataclass(frozen=True)
class Knowledge:
    terminology: Terminology
    phrases: PhraseLibrary
    labs: LabCodes = field(default_factory=lambda: LabCodes({}))

    @classmethod
    def load(cls, rules_dir: Path) -> Knowledge:
        return cls(
            terminology=Terminology.load(rules_dir / "valuesets"),
            phrases=PhraseLibrary.load(rules_dir / "phrases"),
            labs=LabCodes.load(rules_dir / "valuesets" / "labs.tsv"),
        )
