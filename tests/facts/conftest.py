"""Value sets and phrase lists of the bundled rules, loaded once per session."""

from __future__ import annotations

import pytest

from cds.facts import Knowledge, PhraseBook, PhraseLibrary, Terminology
from cds.settings import bundled_rules_dir


@pytest.fixture(scope="session")
def terminology() -> Terminology:
    return Terminology.load(bundled_rules_dir() / "valuesets")


@pytest.fixture(scope="session")
def phrases() -> PhraseBook:
    return PhraseBook.load(bundled_rules_dir() / "phrases" / "en.yaml")


@pytest.fixture(scope="session")
def library() -> PhraseLibrary:
    """Every language's phrase file, as the service loads them."""
    return PhraseLibrary.load(bundled_rules_dir() / "phrases")


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    """Everything extraction reads of the bundled rules (value sets and phrases)."""
    return Knowledge.load(bundled_rules_dir())
