"""Value sets and phrase lists of the bundled rules, loaded once per session."""

from __future__ import annotations

import pytest

from cds.facts import PhraseBook, Terminology
from cds.settings import bundled_rules_dir


@pytest.fixture(scope="session")
def terminology() -> Terminology:
    return Terminology.load(bundled_rules_dir() / "valuesets")


@pytest.fixture(scope="session")
def phrases() -> PhraseBook:
    return PhraseBook.load(bundled_rules_dir() / "phrases.yaml")
