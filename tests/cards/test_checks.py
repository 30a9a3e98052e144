"""Card-template checks on their own (the compiler places the same problems at
file:line:col; tests/engine/test_compiler.py feeds them through rule files)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.cards import CardTemplate, template_inputs, template_problems

SETTINGS = {"config.half": 0.5, "config.month": 30, "config.word": "x"}


def _resolve(raw: float | str) -> object:
    """The engine's resolver in miniature: a number, or a ``config.`` name it knows."""
    if isinstance(raw, str):
        if raw not in SETTINGS:
            raise ValueError(f"unknown setting '{raw}'")
        return SETTINGS[raw]
    return raw


def _template(**changes: Any) -> CardTemplate:
    base: dict[str, Any] = {
        "indicator": "warning",
        "summary": "Restless {region} on {drug}.",
        "detail": "Consider a lower dose of {drug}.",
        "sources": ["silber-2021"],
        "override_reasons": [{"code": "addressed", "display": "Already addressed"}],
    }
    return CardTemplate.model_validate({**base, **changes})


def _problems(template: CardTemplate) -> list[tuple[tuple[str | int, ...], str]]:
    return template_problems(
        template,
        sources={"silber-2021"},
        fact_attributes={"complaint": {"region"}},
        resolve=_resolve,
    )


def test_a_sign_choice_names_its_value_as_an_input() -> None:
    template = _template(summary="Review the dose {change:sign:up|same|down|unknown}.")
    assert _problems(template) == []
    assert "change" in template_inputs(template)


def test_a_good_template_has_no_problem_and_names_its_inputs() -> None:
    template = _template(suggestion={"kind": "reduce-dose", "label": "Lower", "fraction": 0.5})
    assert _problems(template) == []
    assert template_inputs(template) == {"region", "drug", *template.suggestion.inputs}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"summary": "X" * 140 + "."},
            [(("summary",), "summary is 141 characters; CDS Hooks allows 139")],
        ),
        ({"detail": "Lower {} now."}, [(("detail",), "placeholders need a name, like {drug}")]),
        ({"sources": ["nobody-2020"]}, [(("sources", 0), "unknown source 'nobody-2020'")]),
        (
            {"summary": "Review the dose {change:sign:up|same|down}."},
            [
                (
                    ("summary",),
                    "{change:sign:up|same|down} needs four choices: above|zero|below|unknown",
                )
            ],
        ),
        (
            {"sections": [{"fact": "complaint", "attribute": "side", "text": "Side {side}."}]},
            [(("sections", 0, "attribute"), "'complaint' has no attribute 'side'")],
        ),
        (
            {"sections": [{"fact": "complant", "attribute": "region", "text": "On {x}."}]},
            [(("sections", 0, "fact"), "unknown fact type 'complant'")],
        ),
        (
            {"suppression": {"override_reasons": ["other"], "days": "config.month"}},
            [
                (
                    ("suppression", "override_reasons", 0),
                    "'other' is not one of this card's override reasons",
                )
            ],
        ),
        (
            {"suppression": {"override_reasons": ["addressed"], "days": 400}},
            [(("suppression", "days"), "days must be a number in (0, 365]")],
        ),
        (
            {"suggestion": {"kind": "reduce-dose", "label": "Lower", "fraction": "config.word"}},
            [(("suggestion", "fraction"), "fraction must be a number between 0 and 1")],
        ),
        (
            {"suggestion": {"kind": "reduce-dose", "label": "Lower", "fraction": "config.nope"}},
            [(("suggestion", "fraction"), "unknown setting 'config.nope'")],
        ),
    ],
)
def test_each_template_mistake_is_found_where_it_is(
    changes: dict[str, Any], expected: list[tuple[tuple[str | int, ...], str]]
) -> None:
    assert _problems(_template(**changes)) == expected
