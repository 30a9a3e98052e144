"""Outcomes -> CDS Hooks cards: templates from rule files, rendering with suggestions."""

from cds.cards.checks import template_inputs, template_problems
from cds.cards.doses import DraftProduct
from cds.cards.render import (
    RULE_EXTENSION,
    VERSION_EXTENSION,
    CardOutcome,
    RenderContext,
    render_cards,
)
from cds.cards.templates import (
    MAX_SUMMARY_LENGTH,
    CardTemplate,
    EvidenceSource,
    OverrideReasonSpec,
    SuggestionSpec,
    placeholders,
)

__all__ = [
    "MAX_SUMMARY_LENGTH",
    "RULE_EXTENSION",
    "VERSION_EXTENSION",
    "CardOutcome",
    "CardTemplate",
    "DraftProduct",
    "EvidenceSource",
    "OverrideReasonSpec",
    "RenderContext",
    "SuggestionSpec",
    "placeholders",
    "render_cards",
    "template_inputs",
    "template_problems",
]
