"""The bundled rules' value sets and phrases, loaded once per session."""

from __future__ import annotations

import pytest

from cds.facts import Knowledge
from cds.settings import bundled_rules_dir


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return Knowledge.load(bundled_rules_dir())
