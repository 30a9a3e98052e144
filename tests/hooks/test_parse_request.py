"""parse_request's fast path (one parse, envelope-only validation) reads every request
as the full validation does, and leaves every refusal to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds.errors import RequestError
from cds.facts import MAX_JSON_DEPTH
from cds.hooks.models import HookRequest
from cds.hooks.pipeline import parse_request
from tests.conftest import EXAMPLES, load_example

REQUESTS = sorted(p for p in EXAMPLES.glob("*.json") if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_every_example_reads_as_the_full_validation_reads_it(path: Path) -> None:
    body = path.read_bytes()
    assert parse_request(body) == HookRequest.model_validate_json(body)
    assert parse_request(body.decode()) == HookRequest.model_validate_json(body)


def test_words_that_look_like_numbers_in_text_are_still_read() -> None:
    """'NaN' or '1e999' inside a string sends the body down the exact walk, which finds
    nothing wrong."""
    body = load_example("restless-back-amisulpride.json")
    body["extension"] = {"org.example.note": "NaN, Infinity, :1e999 and [9e400 in words"}
    assert parse_request(json.dumps(body).encode()).extension == body["extension"]


@pytest.mark.parametrize("literal", ["NaN", "-Infinity", "1e999", "1.5E+400", "9" * 400 + ".0"])
def test_a_non_finite_number_is_refused_by_name(literal: str) -> None:
    body = load_example("restless-back-amisulpride.json")
    body["context"]["encounterId"] = 424242.25
    text = json.dumps(body).replace("424242.25", literal)
    with pytest.raises(RequestError) as refused:
        parse_request(text.encode())
    assert [p.where for p in refused.value.problems] == ["context.encounterId"]


def test_nesting_past_the_parsers_limit_is_refused() -> None:
    def body(depth: int) -> bytes:
        envelope = {"hook": "x", "hookInstance": "y", "context": {}, "extension": {"a": 0}}
        nested = "[" * depth + "]" * depth
        return json.dumps(envelope).replace('"a": 0', f'"a": {nested}').encode()

    parse_request(body(150))
    for depth in (260, 2_000):  # orjson's writer / reader limits; the slow path names it
        with pytest.raises(RequestError):
            parse_request(body(depth))


def test_a_hand_built_body_nested_past_the_walks_bound_is_refused_by_name() -> None:
    """A Mapping skips the parsers' limits; the non-finite walk stops at its bound."""
    body = load_example("restless-back-amisulpride.json")
    nested: object = 1
    for _ in range(MAX_JSON_DEPTH + 10):
        nested = [nested]
    body["context"]["deep"] = nested
    with pytest.raises(RequestError) as refused:
        parse_request(body)
    [problem] = refused.value.problems
    assert problem.where == "context.deep" + ".0" * (MAX_JSON_DEPTH - 1)
    assert problem.message == f"nested over {MAX_JSON_DEPTH} levels"
