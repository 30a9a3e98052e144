"""Issue 10 section 2: phrase files chosen by the resource's ``language``, then the
request's (the prefetch Bundle's ``language``, the HTTP ``Content-Language``), then
detection.

The note below is written the way a bilingual chart reads: an English template around a
Spanish complaint. Detection picks English (more English marker words), so the Spanish
complaint is not heard; a language stated by the request makes it heard.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import load_example
from tests.hooks.support import (
    TestClient,
    assert_cards_response,
    assert_operation_outcome,
    expressions,
)

ORDER_SELECT = "/cds-services/restless-order-select"
BILINGUAL = (
    "Patient seen at the clinic with his wife and his son; she reports: hormigueo lumbar "
    "acostado, mejora caminando"
)


def _body(*, bundle_language: str | None = None, own_language: str | None = None) -> Any:
    """The Spanish restless back example with the bilingual note and no stated language."""
    body = load_example("restless-back-spanish-amisulpride.json")
    conditions = body["prefetch"]["conditions"]
    (entry,) = conditions["entry"]
    condition = entry["resource"]
    del condition["language"]
    condition["code"]["text"] = BILINGUAL
    condition.pop("note", None)
    if own_language is not None:
        condition["language"] = own_language
    if bundle_language is not None:
        conditions["language"] = bundle_language
    return body


def _rules(response: Any) -> list[str]:
    cards = assert_cards_response(response)
    return sorted(card["extension"]["restless-cds-rule"] for card in cards)


def _post(client: TestClient, body: Any, **headers: str) -> Any:
    return client.post(ORDER_SELECT, json=body, headers=headers)


@pytest.fixture
def spanish(client: TestClient) -> list[str]:
    """The rules the Spanish example (its Condition says ``language: es``) fires."""
    rules = _rules(_post(client, load_example("restless-back-spanish-amisulpride.json")))
    assert any(rule.startswith("dose-review.") for rule in rules), rules
    return rules


def test_detection_alone_misses_the_spanish_complaint(client: TestClient) -> None:
    assert _rules(_post(client, _body())) == []


def test_content_language_makes_it_heard(client: TestClient, spanish: list[str]) -> None:
    assert _rules(_post(client, _body(), **{"Content-Language": "es-MX, en"})) == spanish


def test_the_prefetch_bundle_language_makes_it_heard(
    client: TestClient, spanish: list[str]
) -> None:
    assert _rules(_post(client, _body(bundle_language="es"))) == spanish


def test_the_bundle_language_wins_over_content_language(client: TestClient) -> None:
    body = _body(bundle_language="en")
    assert _rules(_post(client, body, **{"Content-Language": "es"})) == []


def test_the_resource_language_wins_over_the_request(client: TestClient) -> None:
    body = _body(own_language="en", bundle_language="es")
    assert _rules(_post(client, body, **{"Content-Language": "es"})) == []


def test_a_language_without_a_phrase_file_falls_back_to_detection(client: TestClient) -> None:
    assert _rules(_post(client, _body(), **{"Content-Language": "fr"})) == []


@pytest.mark.parametrize("header", ["12", "es_MX", "*", "es--MX"])
def test_a_malformed_content_language_is_a_400_naming_the_header(
    client: TestClient, header: str
) -> None:
    issues = assert_operation_outcome(_post(client, _body(), **{"Content-Language": header}), 400)
    assert expressions(issues) == ["Content-Language"]
    assert header not in str(issues)  # never echoes the input
