"""``restless-cds explain``: what a request became at every stage, and why.

Shows the facts extracted (each names the resource it came from), the rules that fired
in order with the facts they bound, the facts they derived, the cards, and for each rule
that did not fire the first condition that nothing satisfied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds.cards import RULE_EXTENSION
from cds.engine import first_unmet_condition
from cds.facts import to_engine
from cds.hooks import SERVICES, Service, evaluate, parse_request
from cds.rulebase import RuleBase

__all__ = ["explain_request", "format_explanation", "service_for"]


def service_for(hook: str, service_id: str | None = None) -> Service | None:
    """The named service, else the one answering ``hook``."""
    if service_id:
        return SERVICES.get(service_id)
    return next((s for s in SERVICES.values() if s.hook == hook), None)


def explain_request(
    body: bytes, rulebase: RuleBase, *, service: Service | None = None, source_label: str,
    override_system: str,
) -> dict[str, Any]:  # fmt: skip
    """The whole story of one request as plain data (JSON-ready)."""
    request = parse_request(body)
    service = service or service_for(request.hook)
    if service is None:
        raise ValueError(f"no service answers hook '{request.hook}'")
    result = evaluate(
        request, service, rulebase, source_label=source_label, override_system=override_system
    )
    base = [to_engine(f) for f in result.extraction.facts]
    derived = [dict(f) for f in result.engine.derived_facts]
    fired = [
        {
            "rule": firing.rule_id,
            "stage": firing.stage,
            "bound": {alias: _label(fact) for alias, fact in firing.bound.items()},
            **({"derived": dict(firing.derived)} if firing.derived else {}),
        }
        for firing in result.engine.firings
    ]
    fired_ids = {f["rule"] for f in fired}
    config = rulebase.compiled.config
    not_fired = [
        {
            "rule": rule.id,
            "reason": first_unmet_condition(rule, base + derived, config)
            or "every condition is met, yet it did not fire",
        }
        for rule in rulebase.compiled.rules.values()
        if rule.id not in fired_ids
    ]
    return {
        "service": service.id,
        "rules_version": rulebase.version,
        "skipped": [f"{i.where}: {i.message}" for i in result.extraction.issues],
        "facts": base,
        "fired": fired,
        "derived": derived,
        "cards": [
            {
                "rule": c["extension"][RULE_EXTENSION],
                "indicator": c["indicator"],
                "summary": c["summary"],
                "suggestions": [s["label"] for s in c.get("suggestions", [])],
            }
            for c in result.cards
        ],
        "not_fired": not_fired,
        "timings_ms": result.timings_ms,
    }


def _label(fact: Mapping[str, Any]) -> str:
    name = fact.get("fact", "?")
    origin = fact.get("source") or fact.get("drug") or ""
    return f"{name} {origin}".strip()


def _attrs(fact: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in fact.items() if k not in ("fact", "source"))


def format_explanation(report: Mapping[str, Any]) -> str:
    """The report as text for a terminal."""
    lines = [f"service {report['service']}, rules {report['rules_version']}", ""]
    if report["skipped"]:
        lines += ["Skipped input:", *(f"  {s}" for s in report["skipped"]), ""]
    lines.append(f"Facts extracted ({len(report['facts'])}):")
    lines += [f"  {f['fact']} from {f.get('source', '?')}: {_attrs(f)}" for f in report["facts"]]
    lines += ["", "Rules fired, in order:"]
    for n, firing in enumerate(report["fired"], 1):
        bound = ", ".join(f"{a}={v}" for a, v in firing["bound"].items())
        lines.append(f"  {n}. [stage {firing['stage']}] {firing['rule']} ({bound})")
        if "derived" in firing:
            derived = firing["derived"]
            lines.append(f"       -> {derived['fact']}: {_attrs(derived)}")
    lines += ["", f"Cards ({len(report['cards'])}):"]
    for card in report["cards"]:
        lines.append(f"  [{card['indicator']}] {card['summary']}  ({card['rule']})")
        lines += [f"      suggestion: {label}" for label in card["suggestions"]]
    lines += ["", "Rules that did not fire:"]
    lines += [f"  {r['rule']}: {r['reason']}" for r in report["not_fired"]]
    return "\n".join(lines)
