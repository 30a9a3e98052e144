"""Helpers for the CDS Hooks 2.0 protocol tests: request builders and response checks.

The checks follow the requirement IDs of shared/conformance/cds-hooks_2.0_requirements.csv
("Req N" below). They read the JSON a client would receive, never the service's models,
so they also catch what the outbound models let through.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from tests.conftest import EXAMPLES, load_example

__all__ = [
    "EXAMPLE",
    "HOSTILE",
    "MARKER",
    "SERVICE_FOR_HOOK",
    "TestClient",
    "as_order_sign",
    "as_patient_view",
    "assert_card",
    "assert_cards_response",
    "assert_no_null_or_empty",
    "assert_operation_outcome",
    "complaint",
    "current_order",
    "draft_order",
    "example",
    "expected_request",
    "expressions",
    "fhir_authorization",
    "null_or_empty_paths",
    "prefetch_tokens",
    "read_json",
    "service_url",
    "use_fhir_server",
]

EXAMPLE = "restless-back-amisulpride.json"

SERVICE_FOR_HOOK = {
    "order-select": "restless-order-select",
    "order-sign": "restless-order-sign",
    "patient-view": "restless-patient-view",
}

MARKER = "qzx"
"""Every hostile string carries this marker; an error body containing it echoed input."""

HOSTILE: dict[str, str] = {
    "script": f"<script>alert('{MARKER}')</script>",
    "emoji-rtl": f"{MARKER}\u202e\U0001f600\U0001f468\u200d\U0001f469\u200d\U0001f467\u05d0",
    "nul-controls": f"{MARKER}\x00\x01\x1f\x7f",
    "crlf": f"{MARKER}\r\nX-Injected: 1",
    "format": f"{MARKER} {{0}} {{drug}} %s %(x)s",
    "long": MARKER + "A" * 100_000,
}

_INDICATORS = {"info", "warning", "critical"}
_ACTION_TYPES = {"create", "update", "delete"}
_SELECTION_BEHAVIORS = {"at-most-one", "any"}
_LINK_TYPES = {"absolute", "smart"}
_CARD_FIELDS = {
    "uuid",
    "summary",
    "detail",
    "indicator",
    "source",
    "suggestions",
    "selectionBehavior",
    "overrideReasons",
    "links",
    "extension",
}
_TOKEN = re.compile(r"\{\{(.*?)\}\}")


# ---- requests -------------------------------------------------------------------------


def example() -> dict[str, Any]:
    """A fresh copy of the published restless back request (order-select)."""
    return copy.deepcopy(load_example(EXAMPLE))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file (an example request, its expectations, a bundle)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def expected_request(expected_path: Path) -> dict[str, Any]:
    """The request an ``<name>.expected.json`` file states the cards of."""
    return read_json(EXAMPLES / expected_path.name.replace(".expected.json", ".json"))


def fhir_authorization(access_token: str) -> dict[str, Any]:
    """A well-formed fhirAuthorization (Req 21) granting read access to the patient."""
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "restless-cds",
    }


def use_fhir_server(request: dict[str, Any], base_url: str, access_token: str) -> dict[str, Any]:
    """Point a request at a FHIR server: what its prefetch lacks is fetched from there."""
    request["fhirServer"] = base_url
    request["fhirAuthorization"] = fhir_authorization(access_token)
    return request


def as_order_sign(request: dict[str, Any]) -> dict[str, Any]:
    request["hook"] = "order-sign"
    request["context"].pop("selections", None)
    return request


def as_patient_view(request: dict[str, Any]) -> dict[str, Any]:
    request["hook"] = "patient-view"
    request["context"].pop("selections", None)
    request["context"].pop("draftOrders", None)
    return request


def service_url(request: dict[str, Any] | str) -> str:
    hook = request if isinstance(request, str) else request["hook"]
    return f"/cds-services/{SERVICE_FOR_HOOK[hook]}"


def _first_resource(bundle: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = bundle["entry"][0]["resource"]
    return resource


def draft_order(request: dict[str, Any]) -> dict[str, Any]:
    return _first_resource(request["context"]["draftOrders"])


def current_order(request: dict[str, Any]) -> dict[str, Any]:
    return _first_resource(request["prefetch"]["medications"])


def complaint(request: dict[str, Any]) -> dict[str, Any]:
    return _first_resource(request["prefetch"]["conditions"])


# ---- response checks --------------------------------------------------------------------


def null_or_empty_paths(value: Any, path: str = "$") -> Iterator[str]:
    """Where a JSON value holds null or an empty object, list or string (Req 3)."""
    if value is None or (isinstance(value, dict | list | str) and len(value) == 0):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from null_or_empty_paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from null_or_empty_paths(item, f"{path}[{index}]")


def assert_no_null_or_empty(body: Any) -> None:
    """No null and no empty element anywhere, except a top-level ``"cards": []`` (Req 3)."""
    if isinstance(body, dict) and body.get("cards") == []:
        rest = {k: v for k, v in body.items() if k != "cards"}
        problems = [p for k, v in rest.items() for p in null_or_empty_paths(v, f"$.{k}")]
    else:
        problems = list(null_or_empty_paths(body))
    assert problems == [], f"null or empty JSON elements at {problems}"


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def _assert_absolute_url(url: Any, where: str) -> None:
    assert isinstance(url, str), f"{where} is not a string"
    parts = urlsplit(url)
    assert parts.scheme in {"http", "https"}, f"{where} is not an absolute URL: {url!r}"
    assert parts.netloc, f"{where} is not an absolute URL: {url!r}"


def _assert_coding(coding: Any, where: str, *, display_required: bool) -> None:
    assert isinstance(coding, dict), f"{where} is not a Coding object"
    for key in ("system", "code"):
        assert isinstance(coding.get(key), str), f"{where}.{key} is not a string"
        assert coding[key], f"{where}.{key} is empty"
    if display_required or "display" in coding:
        assert isinstance(coding.get("display"), str), f"{where}.display is not a string"
        assert coding["display"].strip(), f"{where}.display is blank"


def _assert_action(action: Any, where: str) -> None:
    assert isinstance(action, dict), f"{where} is not an object"
    assert action.get("type") in _ACTION_TYPES, f"{where}.type is {action.get('type')!r}"
    assert isinstance(action.get("description"), str), f"{where}.description missing"
    assert action["description"].strip(), f"{where}.description is blank"
    if action["type"] in ("create", "update"):
        resource = action.get("resource")
        assert isinstance(resource, dict), f"{where}: a {action['type']} carries a resource"
        assert isinstance(resource.get("resourceType"), str), f"{where}.resource no type"
    if action["type"] == "update":
        assert isinstance(action["resource"].get("id"), str), f"{where}: update needs an id"
    if action["type"] == "delete":
        assert isinstance(action.get("resourceId"), str), f"{where}.resourceId missing"
        assert "resource" not in action, f"{where}: a delete carries no resource"
    if "resourceId" in action:
        assert isinstance(action["resourceId"], str), f"{where}.resourceId not a string"


def _assert_suggestion(suggestion: Any, where: str) -> None:
    assert isinstance(suggestion, dict), f"{where} is not an object"
    assert isinstance(suggestion.get("label"), str), f"{where}.label missing"
    assert suggestion["label"].strip(), f"{where}.label is blank"
    assert _is_uuid(suggestion.get("uuid")), f"{where}.uuid is not a UUID string"
    if "isRecommended" in suggestion:
        assert isinstance(suggestion["isRecommended"], bool), f"{where}.isRecommended"
    actions = suggestion.get("actions")
    assert isinstance(actions, list), f"{where}.actions is not a list"
    assert actions, f"{where}.actions is empty"
    for i, action in enumerate(actions):
        _assert_action(action, f"{where}.actions[{i}]")


def _assert_link(link: Any, where: str) -> None:
    assert isinstance(link, dict), f"{where} is not an object"
    assert isinstance(link.get("label"), str), f"{where}.label missing"
    assert link["label"].strip(), f"{where}.label is blank"
    assert link.get("type") in _LINK_TYPES, f"{where}.type is {link.get('type')!r}"
    _assert_absolute_url(link.get("url"), f"{where}.url")
    if "appContext" in link:
        assert isinstance(link["appContext"], str), f"{where}.appContext not a string"
        assert link["type"] == "smart", f"{where}: appContext on an absolute link"


def assert_card(card: Any, where: str = "card") -> None:
    """Every CDS Hooks 2.0 #card-attributes rule a Service must keep."""
    assert isinstance(card, dict), f"{where} is not an object"
    unknown = set(card) - _CARD_FIELDS
    assert not unknown, f"{where} has fields CDS Hooks does not define: {sorted(unknown)}"
    assert _is_uuid(card.get("uuid")), f"{where}.uuid is not a UUID string"
    summary = card.get("summary")
    assert isinstance(summary, str), f"{where}.summary missing"
    assert summary.strip(), f"{where}.summary is blank"
    assert len(summary) < 140, f"{where}.summary has {len(summary)} characters"
    if "detail" in card:
        assert isinstance(card["detail"], str), f"{where}.detail is not a string"
    assert card.get("indicator") in _INDICATORS, f"{where}.indicator {card.get('indicator')!r}"
    source = card.get("source")
    assert isinstance(source, dict), f"{where}.source missing"
    assert isinstance(source.get("label"), str), f"{where}.source.label missing"
    assert source["label"].strip(), f"{where}.source.label is blank"
    for key in ("url", "icon"):
        if key in source:
            _assert_absolute_url(source[key], f"{where}.source.{key}")
    if "topic" in source:
        _assert_coding(source["topic"], f"{where}.source.topic", display_required=False)
    suggestions = card.get("suggestions")
    if suggestions is not None:
        assert isinstance(suggestions, list), f"{where}.suggestions is not a list"
        assert suggestions, f"{where}.suggestions is empty"
        for i, suggestion in enumerate(suggestions):
            _assert_suggestion(suggestion, f"{where}.suggestions[{i}]")
        assert "selectionBehavior" in card, f"{where}: suggestions without selectionBehavior"
    if "selectionBehavior" in card:
        assert card["selectionBehavior"] in _SELECTION_BEHAVIORS, f"{where}.selectionBehavior"
    reasons = card.get("overrideReasons")
    if reasons is not None:
        assert isinstance(reasons, list), f"{where}.overrideReasons is not a list"
        assert reasons, f"{where}.overrideReasons is empty"
        for i, reason in enumerate(reasons):
            _assert_coding(reason, f"{where}.overrideReasons[{i}]", display_required=True)
    links = card.get("links")
    if links is not None:
        assert isinstance(links, list), f"{where}.links is not a list"
        assert links, f"{where}.links is empty"
        for i, link in enumerate(links):
            _assert_link(link, f"{where}.links[{i}]")
    if "extension" in card:
        assert isinstance(card["extension"], dict), f"{where}.extension is not an object"


def assert_cards_response(response: Any) -> list[dict[str, Any]]:
    """A 200 ``application/json`` ``{"cards": [...]}`` of valid cards; returns the cards."""
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert isinstance(body, dict), "the response is not a JSON object"
    assert isinstance(body.get("cards"), list), "the response has no cards array"
    assert set(body) <= {"cards", "systemActions"}, f"unexpected members {sorted(body)}"
    assert_no_null_or_empty(body)
    for i, card in enumerate(body["cards"]):
        assert_card(card, f"cards[{i}]")
    cards: list[dict[str, Any]] = body["cards"]
    return cards


def assert_operation_outcome(response: Any, status: int) -> list[dict[str, Any]]:
    """An error answered with ``status`` and a FHIR OperationOutcome; returns its issues."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in {"application/fhir+json", "application/json"}, media_type
    body = response.json()
    assert body.get("resourceType") == "OperationOutcome", body
    issues = body.get("issue")
    assert isinstance(issues, list), body
    assert issues, body
    for issue in issues:
        assert issue.get("severity") in {"fatal", "error", "warning", "information"}, issue
        assert isinstance(issue.get("code"), str), issue
        assert issue["code"], issue
    assert_no_null_or_empty(body)
    result: list[dict[str, Any]] = issues
    return result


def expressions(issues: list[dict[str, Any]]) -> list[str]:
    """Every ``issue[].expression`` entry, in order."""
    return [e for issue in issues for e in issue.get("expression", [])]


def prefetch_tokens(template: str) -> list[str]:
    """The ``{{...}}`` tokens of a prefetch template."""
    return _TOKEN.findall(template)
