"""Card outcomes -> CDS Hooks 2.0 card objects (plain dicts, no nulls, no empty lists).

Text comes from the rule file's template; the renderer adds what needs computing: a
uuid per card, evidence links, coded override reasons, the suggestion's FHIR action,
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

import orjson

from cds.cards.templates import MAX_SUMMARY_LENGTH, CardTemplate, EvidenceSource, SuggestionSpec
from cds.units import mass_factor

__all__ = ["CardOutcome", "RenderContext", "render_cards"]

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


class _Shown:
    """A value as a template shows it: ``{x:dose}`` reads "600 mg/day", "8.36 mg/day
    (234 mg every 4 weeks)" when the rule binds ``x_as_ordered`` too, or says the dose
    could not be read; ``{x:date}`` reads a day number as 2026-10-22."""

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
    0.4 g/day), else from the ordered dose; each becomes an ``update`` of the draft.
    """
    draft = ctx.draft_orders.get(str(values.get(spec.order)))
    ordered = values.get(spec.dose)
    if draft is None or not isinstance(ordered, int | float) or ordered <= 0:
        return []
    fraction = float(spec.fraction)  # config names are resolved by the rules compiler
    current = values.get(spec.current_dose) if spec.current_dose else None
    targets: list[tuple[str, float]] = []
    if isinstance(current, int | float) and 0 < current < ordered:
        targets.append(
            (f"Keep the current dose ({_display_value(float(current))} mg/day)", current)
        )
    base = current if isinstance(current, int | float) and 0 < current <= ordered else ordered
    lower = _round_sig(base * (1 - float(fraction)))
    targets.append((f"{spec.label} (about {_display_value(lower)} mg/day)", lower))
    suggestions = []
    for label, target in targets:
        updated = _scaled_order(draft, target / ordered)
        if updated is None:
            continue
        description = (
            f"Change the draft order from {_display_value(float(ordered))} mg/day to "
            f"{_display_value(float(target))} mg/day (the dosage free text is removed as it "
            "stated the old dose); review before signing."
        )
        suggestions.append(
            {
                "label": label,
                "uuid": str(uuid.uuid4()),
                "actions": [{"type": "update", "description": description, "resource": updated}],
            }
        )
    return suggestions


def _round_sig(value: float, digits: int = 2) -> float:
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _is_mass_dose(quantity: Any) -> bool:
    """A dose in a mass unit of the one unit table ("mg", "MG", "milligrams", "µg"...)."""
    if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), int | float):
        return False
    units = (quantity.get("code"), quantity.get("unit"))
    return any(isinstance(u, str) and mass_factor(u) is not None for u in units)


def _scaled_order(order: Mapping[str, Any], factor: float) -> dict[str, Any] | None:
    """A copy of the draft with every mass dose multiplied by ``factor``: doses, dose
    ranges and the as-needed maxima (maxDosePerPeriod, maxDosePerAdministration).

    A changed instruction loses its free-text ``text`` and ``patientInstruction``: they
    would still state the old dose, so the EHR must rebuild them from the structure.
    """
    # a JSON round trip copies plain JSON data several times faster than copy.deepcopy
    updated = {
        **order,
        "dosageInstruction": orjson.loads(orjson.dumps(order.get("dosageInstruction"))),
    }
    changed = False
    for dosage in updated.get("dosageInstruction") or []:
        maximum = dosage.get("maxDosePerPeriod") or {}
        quantities = [maximum.get("numerator"), dosage.get("maxDosePerAdministration")]
        for rate in dosage.get("doseAndRate") or []:
            dose_range = rate.get("doseRange") or {}
            quantities += [rate.get("doseQuantity"), dose_range.get("low"), dose_range.get("high")]
        for quantity in quantities:
            if _is_mass_dose(quantity):
                assert isinstance(quantity, dict)
                scaled = round(quantity["value"] * factor, 3)  # exact: no re-rounding per dose
                quantity["value"] = int(scaled) if scaled.is_integer() else scaled
                dosage.pop("text", None)
                dosage.pop("patientInstruction", None)
                changed = True
    return _pruned(updated) if changed else None


def _pruned(value: Any) -> Any:
    """JSON without null or empty elements (#use-of-json), as FHIR JSON requires too."""
    if isinstance(value, Mapping):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [p for p in (_pruned(v) for v in value) if p not in (None, "", [], {})]
    return value
