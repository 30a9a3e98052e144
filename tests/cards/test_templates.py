"""Card templates as rule authors write them: strict models, placeholder names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cds.cards import CardTemplate, SuggestionSpec, placeholders
from cds.rulebase import RuleBase


def test_placeholders() -> None:
    assert placeholders("Restless {region} on {drug}: {mg:.0f} mg, {{literal}}") == {
        "region",
        "drug",
        "mg",
    }
    assert placeholders("no fields") == set()


def test_template_is_strict() -> None:
    with pytest.raises(ValidationError, match="sumary"):
        CardTemplate.model_validate(
            {"indicator": "info", "summary": "Some summary", "detail": "Detail", "sumary": "x"}
        )
    with pytest.raises(ValidationError, match="indicator"):
        CardTemplate.model_validate({"indicator": "hint", "summary": "Summary", "detail": "Detail"})


def test_suggestion_fraction_may_name_a_config_setting() -> None:
    spec = SuggestionSpec.model_validate(
        {"kind": "reduce-dose", "label": "Lower", "fraction": "config.dose_reduction_fraction"}
    )
    assert (spec.fraction, spec.order) == ("config.dose_reduction_fraction", "order")


class _AnySpec:
    """A short value that takes any format spec the renderer knows (``dose``, ``date``)."""

    def __format__(self, spec: str) -> str:
        return "x"


def test_bundled_templates_fit_the_summary_limit(bundled_rules: RuleBase) -> None:
    """With short values, no bundled summary needs truncating."""
    for name, template in bundled_rules.compiled.cards.items():
        shown = dict.fromkeys(placeholders(template.summary), _AnySpec())
        filled = template.summary.format_map(shown)
        assert len(filled) < 100, name
        for source in template.sources:
            assert source in bundled_rules.compiled.sources, (name, source)


@pytest.mark.parametrize("fraction", [0, 1.5])
def test_literal_fraction_outside_zero_and_one_is_refused(fraction: float) -> None:
    """Regression: a ``config.`` fraction is checked to lie in (0, 1) by the rule compiler, but a
    literal one is not checked anywhere: ``fraction: 1.5`` loads and the renderer then
    suggests a negative dose (0 or 1 suggest stopping the drug or no change)."""
    with pytest.raises(ValidationError, match="fraction"):
        SuggestionSpec.model_validate(
            {"kind": "reduce-dose", "label": "Lower", "fraction": fraction}
        )
