"""Card outcomes -> CDS Hooks 2.0 card objects (plain dicts, no nulls, no empty lists).

Text comes from the rule file's template; the renderer adds what needs computing: a
uuid per card, evidence links, coded override reasons, the suggestion's FHIR action
(its doses rewritten by ``cds.cards.doses``, in units of the draft's product if exact),
and the rule id and rules version (as a card extension) so feedback can be joined to
the rule that produced the card. One card per finding: outcomes with the same template
and ``dedupe_on`` values collapse to the first.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cds.cards.doses import ML_STEP, DraftProduct, ScaledOrder, scale_order
from cds.cards.templates import (
    MAX_SUMMARY_LENGTH,
    SIGN_SPEC,
    CardTemplate,
    EvidenceSource,
    SuggestionSpec,
    by_sign,
)

__all__ = ["CardOutcome", "DraftProduct", "RenderContext", "render_cards"]

_EPOCH = dt.date(1970, 1, 1)
RULE_EXTENSION = "restless-cds-rule"
VERSION_EXTENSION = "restless-cds-rules-version"


class CardOutcome(Protocol):
    """What the engine reports for a fired card rule (``cds.engine.Outcome``)."""

    @property
    def rule_id(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def values(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class RenderContext:
    templates: Mapping[str, CardTemplate]
    sources: Mapping[str, EvidenceSource]
    rules_version: str
    source_label: str
    override_system: str
    draft_orders: Mapping[str, Mapping[str, Any]]
    """Draft MedicationRequests by ``MedicationRequest/id``: what a suggestion may update."""
    derived: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """The session's derived facts by type, for a template's conditional sections."""
    draft_products: Mapping[str, DraftProduct] = field(default_factory=dict)
    """What one tablet, capsule or mL of each draft's product holds, by the same key as
    ``draft_orders``: lets a suggestion count tablets instead of mg."""


class _Shown:
    """A value as a template shows it: ``{x:dose}`` reads "600 mg/day", "8.36 mg/day
    (234 mg every 4 weeks)" when the rule binds ``x_as_ordered`` too, or says the dose
    could not be read; ``{x:date}`` reads a day number as 2026-10-22;
    ``{x:sign:above|zero|below|unknown}`` reads one of four words by the sign of a number
    (a dose change: the draft raises, keeps or lowers the dose, or either is unknown)."""

    def __init__(self, value: Any, as_ordered: Any = None) -> None:
        self.value = value
        self.as_ordered = as_ordered

    def __format__(self, spec: str) -> str:
        number = isinstance(self.value, int | float) and not isinstance(self.value, bool)
        if spec == "dose":
            if not number:
                return "unknown (the dose could not be read from the order)"
            own = f" ({self.as_ordered})" if isinstance(self.as_ordered, str) else ""
            return f"{self.value} mg/day{own}"
        if spec == "date":
            return _iso_day(self.value) if number else "a date not stated"
        if spec.startswith(SIGN_SPEC):
            return by_sign(self.value if number else None, spec.removeprefix(SIGN_SPEC))
        return "not stated" if self.value is None else format(self.value, spec)


def _iso_day(day: float) -> str:
    try:
        return (_EPOCH + dt.timedelta(days=int(day))).isoformat()
    except (OverflowError, ValueError):
        return "a date not stated"


class _Values(dict[str, Any]):
    def __missing__(self, key: str) -> _Shown:
        return _Shown(None)


def _display_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, float):
        return round(value, 2)
    return value


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def _markdown_safe(values: Mapping[str, Any]) -> dict[str, Any]:
    """Escape Markdown and HTML in values from the record (a Condition's text may hold
    anything, '<script>' included); the template's own Markdown stays as written."""
    return {
        k: _MARKDOWN_SPECIAL.sub(r"\\\1", v) if isinstance(v, str) else v for k, v in values.items()
    }


def render_cards(outcomes: Sequence[CardOutcome], ctx: RenderContext) -> list[dict[str, Any]]:
    cards: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for outcome in outcomes:
        template = ctx.templates[outcome.template]
        keys = template.dedupe_on or sorted(outcome.values)
        finding = (outcome.template, *(repr(outcome.values.get(k)) for k in keys))
        if finding in seen:
            continue
        seen.add(finding)
        cards.append(_card(outcome, template, ctx))
    return cards


def _card(outcome: CardOutcome, template: CardTemplate, ctx: RenderContext) -> dict[str, Any]:
    values = {k: _display_value(v) for k, v in outcome.values.items()}
    summary = template.summary.format_map(_shown(values))
    if len(summary) > MAX_SUMMARY_LENGTH:
        summary = summary[: MAX_SUMMARY_LENGTH - 1].rstrip() + "…"
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": summary,
        "detail": _detail(template, values, ctx),
        "indicator": template.indicator,
        "source": {"label": ctx.source_label},
        "extension": {RULE_EXTENSION: outcome.rule_id, VERSION_EXTENSION: ctx.rules_version},
    }
    cited = [*template.sources, *_shown_section_sources(template, ctx)]
    links = [_link(ctx.sources[s]) for s in dict.fromkeys(cited) if s in ctx.sources]
    if links:
        card["links"] = links
    if template.suggestion is not None:
        suggestions = _suggestions(template.suggestion, outcome.values, ctx)
        if suggestions:
            card["suggestions"] = suggestions
            card["selectionBehavior"] = "at-most-one"
    if template.override_reasons:
        card["overrideReasons"] = [
            {"system": ctx.override_system, "code": r.code, "display": r.display}
            for r in template.override_reasons
        ]
    return card


_AS_ORDERED = "_as_ordered"
"""A binding ``x_as_ordered`` is how ``x`` (a dose) was written in the order."""


def _shown(values: Mapping[str, Any]) -> _Values:
    return _Values({k: _Shown(v, values.get(k + _AS_ORDERED)) for k, v in values.items()})


def _detail(template: CardTemplate, values: Mapping[str, Any], ctx: RenderContext) -> str:
    safe = _markdown_safe(values)
    paragraphs = [template.detail.format_map(_shown(safe)).strip()]
    for section in template.sections:
        items = sorted(
            {
                str(f[section.attribute])
                for f in ctx.derived.get(section.fact, ())
                if section.attribute in f
            }
        )
        if items:
            listed = _markdown_safe({"list": ", ".join(items)})
            paragraphs.append(section.text.format_map(_shown({**safe, **listed})).strip())
    return "\n\n".join(paragraphs)


def _shown_section_sources(template: CardTemplate, ctx: RenderContext) -> list[str]:
    """The evidence of the sections this card shows (a lab's guideline, say)."""
    return [
        source
        for section in template.sections
        if section.sources
        and any(section.attribute in f for f in ctx.derived.get(section.fact, ()))
        for source in section.sources
    ]


def _link(source: EvidenceSource) -> dict[str, str]:
    return {"label": source.label, "url": str(source.url), "type": "absolute"}


def _suggestions(
    spec: SuggestionSpec, values: Mapping[str, Any], ctx: RenderContext
) -> list[dict[str, Any]]:
    """Keep the current dose (when the draft raises it) and/or lower it by ``fraction``.

    The lower dose is taken from the current dose when there is one (Sun 2022: 0.6 ->
    0.4 g/day), else from the ordered dose; each becomes an ``update`` of the draft,
    in units of its product when the arithmetic is exact (``cds.cards.doses``).
    """
    reference = str(values.get(spec.order))
    draft = ctx.draft_orders.get(reference)
    ordered = values.get(spec.dose)
    if draft is None or not isinstance(ordered, int | float) or ordered <= 0:
        return []
    product = ctx.draft_products.get(reference)
    fraction = float(spec.fraction)  # config names are resolved by the rules compiler
    current = values.get(spec.current_dose) if spec.current_dose else None
    targets: list[tuple[str, float, bool]] = []
    if isinstance(current, int | float) and 0 < current < ordered:
        targets.append(("Keep the current dose", current, False))
    base = current if isinstance(current, int | float) and 0 < current <= ordered else ordered
    targets.append((spec.label, _round_sig(base * (1 - float(fraction))), True))
    suggestions = []
    for head, target, approximate in targets:
        tolerance = _MG_PER_DAY_ROUNDING * (1 / ordered + 1 / target)
        scaled = scale_order(draft, target / ordered, product, tolerance)
        if scaled is None:
            continue
        action = {
            "type": "update",
            "description": _description(float(ordered), target, scaled, product),
            "resource": scaled.resource,
        }
        suggestions.append(
            {
                "label": _label(head, target, approximate, scaled, product),
                "uuid": str(uuid.uuid4()),
                "actions": [action],
            }
        )
    return suggestions


_MG_PER_DAY_ROUNDING = 0.0005
"""mg/day values reach the cards rounded to 3 decimals (``cds.facts.dosage``)."""

_STALE_TEXT = "the dosage free text is removed as it stated the old dose"


def _label(
    head: str, target: float, approximate: bool, scaled: ScaledOrder, product: DraftProduct | None
) -> str:
    """ "Keep the current dose (75 mg/day: 1 tablet once a day)": mg/day always, and
    the dose as the order now reads when it is counted in units or not daily."""
    daily = f"{'about ' if approximate else ''}{_display_value(float(target))} mg/day"
    if scaled.form == "ingredient-mg" and product is not None:
        written = f"{product.ingredient} {scaled.per_dose}" if scaled.per_dose else None
        return f"{head} ({daily}: {written or 'in mg of ' + product.ingredient})"
    if scaled.form == "units" and scaled.per_dose is None and product and product.unit_mg:
        per_day = target / product.unit_mg
        plural = "s" if per_day > 1 else ""
        return f"{head} ({daily}: {_display_value(per_day)} {scaled.unit_word}{plural} a day)"
    if scaled.per_dose and (scaled.form == "units" or scaled.less_than_daily):
        return f"{head} ({daily}: {scaled.per_dose})"
    return f"{head} ({daily})"


def _description(
    ordered: float, target: float, scaled: ScaledOrder, product: DraftProduct | None
) -> str:
    change = (
        f"Change the draft order from {_display_value(ordered)} mg/day to "
        f"{_display_value(float(target))} mg/day"
    )
    if scaled.form == "units" and product is not None:
        dose = f", {scaled.per_dose}" if scaled.per_dose else ""
        return f"{change}: {product.display}{dose} ({_STALE_TEXT}); review before signing."
    if scaled.form == "ingredient-mg" and product is not None:
        dose = f": {scaled.per_dose}" if scaled.per_dose else ""
        return (
            f"{change}, written in mg of {product.ingredient}{dose}. The new dose is not "
            f"{_NOT_COUNTED.get(scaled.unit_word or '', 'a whole number of units')} of "
            f"{product.display} per dose, so choose the product before signing "
            f"({_STALE_TEXT})."
        )
    return f"{change} ({_STALE_TEXT}); review before signing."


_NOT_COUNTED = {
    "capsule": "a whole number of capsules (capsules are never split)",
    "tablet": "a whole number of tablets",
    "mL": f"a multiple of {ML_STEP:g} mL",
}


def _round_sig(value: float, digits: int = 2) -> float:
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))
