"""The bundled rule base, loaded once per module: card tests read only its templates."""

from __future__ import annotations

import pytest

from cds.rulebase import RuleBase, load_rulebase
from cds.settings import bundled_rules_dir


@pytest.fixture(scope="module")
def bundled_rules() -> RuleBase:
    """``load_rulebase`` of the shipped rules; its engine is retired at once (rendering
    needs the compiled templates, sources, config and version, never a session)."""
    base = load_rulebase(bundled_rules_dir())
    base.close()
    return base
