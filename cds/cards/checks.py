"""What is wrong with a card template, found before it is ever rendered.

A template is checked alone (summary length, placeholders that can be filled in, whole
sentences, suppression codes and days, the suggestion's fraction, sections naming a real
fact attribute, sources that exist); the rule compiler calls these checks, places each
problem at its file:line:col, and checks that each card rule's ``with`` supplies
``template_inputs``. The value expressions (``config.x``) belong to the engine, so the
compiler passes in how to resolve one.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Collection, Mapping

from cds.cards.templates import (
    MAX_SUMMARY_LENGTH,
    CardTemplate,
    placeholders,
    sentence_problems,
    sign_spec_problems,
)

__all__ = ["Resolve", "TemplateProblem", "template_inputs", "template_problems"]

TemplateProblem = tuple[tuple[str | int, ...], str]
"""Where in the template (a path below ``cards: <name>``) and what is wrong."""

Resolve = Callable[[float | str], object]
"""A template number as written (``0.5`` or ``config.x``) -> its value; ``ValueError`` with
a message when it names nothing."""


def format_problem(text: str) -> str | None:
    """Why a template text cannot be filled in, or ``None`` when it can."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text)]
    except ValueError as exc:
        return f"malformed placeholder: {exc}"
    if any(field is not None and (field == "" or field.isdigit()) for field in fields):
        return "placeholders need a name, like {drug}"
    return None


def template_inputs(template: CardTemplate) -> set[str]:
    """The values a card rule's ``with`` must supply (none when a text is malformed: that
    is reported by ``template_problems``)."""
    texts = [template.summary, template.detail, *(s.text for s in template.sections)]
    if any(format_problem(text) for text in texts):
        return set()
    names = placeholders(template.summary) | placeholders(template.detail)
    for section in template.sections:
        names |= placeholders(section.text) - {"list"}
    names.update(template.dedupe_on)
    if template.suggestion:
        names |= template.suggestion.inputs
    return names


def template_problems(
    template: CardTemplate,
    *,
    sources: Collection[str],
    fact_attributes: Mapping[str, Collection[str]],
    resolve: Resolve,
) -> list[TemplateProblem]:
    """Every problem of one template, each with its path inside the template."""
    problems: list[TemplateProblem] = []
    if len(template.summary) > MAX_SUMMARY_LENGTH:
        msg = f"summary is {len(template.summary)} characters; CDS Hooks allows 139"
        problems.append((("summary",), msg))
    problems.extend(_suppression_problems(template, resolve))
    for key, text in (("summary", template.summary), ("detail", template.detail)):
        problems.extend(((key,), message) for message in _text_problems(text))
    for k, section in enumerate(template.sections):
        where: tuple[str | int, ...] = ("sections", k)
        problems.extend(((*where, "text"), message) for message in _text_problems(section.text))
        attrs = fact_attributes.get(section.fact)
        if attrs is None:
            problems.append(((*where, "fact"), f"unknown fact type '{section.fact}'"))
        elif section.attribute not in attrs:
            msg = f"'{section.fact}' has no attribute '{section.attribute}'"
            problems.append(((*where, "attribute"), msg))
        for n, source_id in enumerate(section.sources):
            if source_id not in sources:
                problems.append(((*where, "sources", n), f"unknown source '{source_id}'"))
    for k, source_id in enumerate(template.sources):
        if source_id not in sources:
            problems.append((("sources", k), f"unknown source '{source_id}'"))
    problems.extend(_fraction_problems(template, resolve))
    return problems


def _text_problems(text: str) -> list[str]:
    found = format_problem(text)
    if found is not None:
        return [found, *sentence_problems(text)]
    return [*sign_spec_problems(text), *sentence_problems(text)]


def _suppression_problems(template: CardTemplate, resolve: Resolve) -> list[TemplateProblem]:
    spec = template.suppression
    if spec is None:
        return []
    problems: list[TemplateProblem] = []
    codes = {r.code for r in template.override_reasons}
    for k, code in enumerate(spec.override_reasons):
        if code not in codes:
            msg = f"'{code}' is not one of this card's override reasons"
            problems.append((("suppression", "override_reasons", k), msg))
    try:
        value = resolve(spec.days)
    except ValueError as exc:
        return [*problems, (("suppression", "days"), str(exc))]
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 365:
        problems.append((("suppression", "days"), "days must be a number in (0, 365]"))
    return problems


def _fraction_problems(template: CardTemplate, resolve: Resolve) -> list[TemplateProblem]:
    if not template.suggestion or not isinstance(template.suggestion.fraction, str):
        return []
    where = ("suggestion", "fraction")
    try:
        fraction = resolve(template.suggestion.fraction)
    except ValueError as exc:
        return [(where, str(exc))]
    if not isinstance(fraction, int | float) or not 0 < float(fraction) < 1:
        return [(where, "fraction must be a number between 0 and 1")]
    return []
