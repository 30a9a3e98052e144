"""Bad requests (#http-request_1, #http-status-codes): every one answered with a 4xx
FHIR OperationOutcome that names the field, never a 500, never echoing the input."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cds.app import create_app
from cds.settings import Settings
from tests.hooks.support import (
    HOSTILE,
    MARKER,
    TestClient,
    as_order_sign,
    as_patient_view,
    assert_cards_response,
    assert_operation_outcome,
    example,
    expressions,
    service_url,
)

ORDER_SELECT = "/cds-services/restless-order-select"
SECRET = "eyJhbGciOiJSUzM4NCJ9.secret-access-token"


@contextmanager
def _client_with_limit(rules_dir: Path, limit: int) -> Iterator[TestClient]:
    settings = Settings(rules_dir=rules_dir, max_body_bytes=limit)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    "body",
    [
        b'{"hook": "order-select", "hookInstance": ',
        b"",
        b"[]",
        b'[{"hook": "order-select"}]',
        b'"order-select"',
        b"42",
        b"null",
        b'{"hook": "order-select"} trailing',
        b'{"hook": "\xff\xfe"}',
        b"{'hook': 'order-select'}",
        b'{"hook": "<script>qzx</script>", "context": {"patientId": "qzx\x00',
    ],
    ids=[
        "truncated",
        "empty",
        "empty-list",
        "list",
        "string",
        "number",
        "null",
        "trailing-garbage",
        "invalid-utf8",
        "single-quotes",
        "truncated-hostile",
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400(client: TestClient, body: bytes) -> None:
    """Req 1, 14, 15, 76: the call is a JSON object; anything else is a 400
    OperationOutcome (not a 422, not a 500)."""
    response = client.post(ORDER_SELECT, content=body, headers={"content-type": "application/json"})

    issues = assert_operation_outcome(response, 400)
    assert {i["code"] for i in issues} <= {"invalid", "structure"}
    assert MARKER not in response.text


@pytest.mark.parametrize("field", ["hook", "hookInstance", "context"])
def test_a_missing_required_field_is_a_400_naming_it(
    client: TestClient, request_body: dict[str, Any], field: str
) -> None:
    """Req 18, 19, 22: hook, hookInstance and context are REQUIRED."""
    del request_body[field]

    issues = assert_operation_outcome(client.post(ORDER_SELECT, json=request_body), 400)

    assert expressions(issues) == [field]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hook", 7),
        ("hook", ""),
        ("hookInstance", 12345),
        ("hookInstance", ""),
        ("context", "patient rbs-50m"),
        ("context", [{"patientId": "rbs-50m"}]),
        ("context", None),
        ("prefetch", [{"resourceType": "Bundle"}]),
        ("prefetch", "medications"),
        ("fhirServer", 443),
        ("fhirAuthorization", "Bearer abc"),
        ("extension", "org.example"),
    ],
    ids=lambda v: json.dumps(v)[:20],
)
def test_a_wrong_typed_field_is_a_400_naming_it(
    client: TestClient, request_body: dict[str, Any], field: str, value: Any
) -> None:
    """Req 18, 19, 20, 21, 22, 23, 214: each top-level field has its type."""
    request_body[field] = value

    issues = assert_operation_outcome(client.post(ORDER_SELECT, json=request_body), 400)

    assert {e.split(".")[0] for e in expressions(issues)} == {field}


@pytest.mark.parametrize(
    ("hook", "field"),
    [
        ("order-select", "patientId"),
        ("order-select", "userId"),
        ("order-select", "selections"),
        ("order-select", "draftOrders"),
        ("order-sign", "patientId"),
        ("order-sign", "draftOrders"),
        ("patient-view", "patientId"),
        ("patient-view", "userId"),
    ],
)
def test_a_context_missing_a_hook_field_is_a_400_naming_it(
    client: TestClient, hook: str, field: str
) -> None:
    """Req 22: each hook's context has its required fields (hook definitions 2.0)."""
    request = example()
    if hook == "order-sign":
        as_order_sign(request)
    elif hook == "patient-view":
        as_patient_view(request)
    del request["context"][field]

    issues = assert_operation_outcome(client.post(service_url(request), json=request), 400)

    assert expressions(issues) == [f"context.{field}"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("draftOrders", {"resourceType": "MedicationRequest", "id": "x", "status": "draft"}),
        ("draftOrders", [{"resourceType": "Bundle"}]),
        ("draftOrders", "Bundle"),
        ("selections", []),
        ("selections", "MedicationRequest/draft-amisulpride-800"),
        ("selections", [7]),
        ("patientId", ["rbs-50m"]),
        ("patientId", ""),
        ("userId", {"reference": "Practitioner/psych-1"}),
    ],
    ids=lambda v: json.dumps(v)[:24],
)
def test_a_wrong_typed_context_field_is_a_400_naming_it(
    client: TestClient, request_body: dict[str, Any], field: str, value: Any
) -> None:
    """Req 22: draftOrders is a Bundle, selections a non-empty list of strings, ids are
    strings (order-select 2.0)."""
    request_body["context"][field] = value

    issues = assert_operation_outcome(client.post(ORDER_SELECT, json=request_body), 400)

    assert {".".join(e.split(".")[:2]) for e in expressions(issues)} == {f"context.{field}"}


@pytest.mark.parametrize(
    ("hook", "service"),
    [
        ("patient-view", "restless-order-select"),
        ("order-sign", "restless-order-select"),
        ("order-select", "restless-patient-view"),
        ("medication-prescribe", "restless-order-sign"),
    ],
)
def test_a_hook_the_service_does_not_answer_is_a_400(
    client: TestClient, request_body: dict[str, Any], hook: str, service: str
) -> None:
    """Req 7, 16, 18: each service answers the one hook it lists in discovery."""
    request_body["hook"] = hook

    issues = assert_operation_outcome(
        client.post(f"/cds-services/{service}", json=request_body), 400
    )

    assert expressions(issues) == ["hook"]


@pytest.mark.parametrize("service_id", ["no-such-service", "restless-order-select-v2", "RESTLESS"])
def test_an_unknown_service_id_is_a_404(
    client: TestClient, request_body: dict[str, Any], service_id: str
) -> None:
    """Req 10, 14, 16: only advertised ids are endpoints."""
    issues = assert_operation_outcome(
        client.post(f"/cds-services/{service_id}", json=request_body), 404
    )

    assert {i["code"] for i in issues} == {"not-found"}


def test_a_body_over_the_limit_is_a_413(rules_dir: Path) -> None:
    """Req 14, 76: a declared Content-Length over ``max_body_bytes`` is refused."""
    settings = Settings(rules_dir=rules_dir)
    body = b" " * (settings.max_body_bytes + 1)
    with _client_with_limit(rules_dir, settings.max_body_bytes) as client:
        response = client.post(ORDER_SELECT, content=body)

    assert response.request.headers["content-length"] == str(len(body))
    issues = assert_operation_outcome(response, 413)
    assert {i["code"] for i in issues} == {"too-costly"}


def test_a_chunked_body_over_the_limit_is_a_413(rules_dir: Path) -> None:
    """Req 14, 76: without a Content-Length the limit still holds while streaming."""

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    with _client_with_limit(rules_dir, 4096) as client:
        response = client.post(ORDER_SELECT, content=chunks())

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_operation_outcome(response, 413)


def test_a_body_exactly_at_the_limit_is_served(rules_dir: Path) -> None:
    """Req 74: the limit is inclusive; whitespace padding is still JSON."""
    body = json.dumps(example()).encode()
    limit = 16 * 1024
    assert len(body) < limit
    padded = body + b" " * (limit - len(body))
    with _client_with_limit(rules_dir, limit) as client:
        at_limit = client.post(ORDER_SELECT, content=padded)
        over_limit = client.post(ORDER_SELECT, content=padded + b" ")

    assert len(assert_cards_response(at_limit)) == 1
    assert_operation_outcome(over_limit, 413)


@pytest.mark.parametrize("depth", [300, 10_000, 200_000])
@pytest.mark.parametrize("where", ["top-level", "extension", "draft-order"])
def test_deeply_nested_json_is_a_400(
    client: TestClient, request_body: dict[str, Any], depth: int, where: str
) -> None:
    """Req 14, 76: nesting past the parser's limit is refused, never a crash or a 500."""
    nested = "[" * depth + "]" * depth
    if where == "top-level":
        body = nested
    else:
        marker = '"__nested__"'
        if where == "extension":
            request_body["extension"] = {"org.example.deep": "__nested__"}
        else:
            request_body["context"]["draftOrders"]["entry"][0]["resource"]["note"] = "__nested__"
        body = json.dumps(request_body).replace(marker, nested)

    response = client.post(ORDER_SELECT, content=body.encode())

    assert_operation_outcome(response, 400)


def test_moderately_nested_extensions_are_accepted(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 214: an extension object may nest; 50 levels are fine."""
    nested: Any = {"leaf": True}
    for _ in range(25):
        nested = {"child": [nested]}
    request_body["extension"] = {"org.example.deep": nested}

    assert len(assert_cards_response(client.post(ORDER_SELECT, json=request_body))) == 1


def _set(request: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    if field == "context.selections":
        request["context"]["selections"] = [value]
    elif field == "prefetch key":
        request["prefetch"][value] = None
    elif field.startswith("context."):
        request["context"][field.removeprefix("context.")] = value
    else:
        request[field] = value
    return request


@pytest.mark.parametrize(
    "field",
    [
        "hookInstance",
        "hook",
        "fhirServer",
        "context.patientId",
        "context.userId",
        "context.encounterId",
        "context.selections",
        "prefetch key",
        "service id",
    ],
)
def test_hostile_strings_never_give_a_500_nor_an_echo(client: TestClient, field: str) -> None:
    """Req 3, 14, 76 (security): emoji, RTL overrides, NUL and control characters,
    markup, CRLF, format strings and 100 000-character ids in every string field: each
    call is a 200 or a 4xx OperationOutcome, and no error body repeats the input."""
    failures = []
    for name, value in HOSTILE.items():
        if field == "service id":
            path = quote(value[:4000], safe="")  # URLs stay well under client limits
            response = client.post(f"/cds-services/{path}", json=example())
        else:
            request = _set(example(), field, value)
            response = client.post(service_url("order-select"), json=request)
        if response.status_code >= 500:
            failures.append(f"{name}: {response.status_code}")
        elif response.status_code >= 400:
            assert_operation_outcome(response, response.status_code)
            if MARKER in response.text:
                failures.append(f"{name}: {response.status_code} echoes the input")
        else:
            assert_cards_response(response)

    assert failures == []


def test_control_characters_in_the_hook_instance_cannot_forge_log_lines(
    client: TestClient, request_body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Req 19, 25 (the hookInstance identifies each call in the logs); security,
    CWE-117: CR/LF in it must not start a new, forged log line."""
    request_body["hookInstance"] = "d1577c69\r\nERROR cds.hooks: forged entry"

    with caplog.at_level(logging.INFO, logger="cds"):
        response = client.post(ORDER_SELECT, json=request_body)

    assert response.status_code in (200, 400)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("cds")]
    assert messages, "the call was not logged"
    assert [m for m in messages if "\n" in m or "\r" in m] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token_type", "MAC"),
        ("expires_in", -1),
        ("scope", None),
        ("subject", 17),
    ],
)
def test_a_bad_fhir_authorization_is_a_400_that_hides_the_token(
    client: TestClient, request_body: dict[str, Any], field: str, value: Any
) -> None:
    """Req 21, 66, 67, 68, 69, 70: fhirAuthorization has its fields and types; the
    error names the field and never repeats the access token."""
    authorization = {
        "access_token": SECRET,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/MedicationRequest.read user/Condition.read",
        "subject": "restless-cds",
    }
    authorization[field] = value
    request_body["fhirAuthorization"] = authorization

    response = client.post(ORDER_SELECT, json=request_body)

    issues = assert_operation_outcome(response, 400)
    assert expressions(issues) == [f"fhirAuthorization.{field}"]
    assert "secret-access-token" not in response.text


def test_a_valid_fhir_authorization_is_accepted(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 21, 60: a well-formed fhirAuthorization next to fhirServer is accepted."""
    request_body["fhirAuthorization"] = {
        "access_token": SECRET,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/MedicationRequest.read user/Condition.read",
        "subject": "restless-cds",
        "patient": "rbs-50m",
    }

    response = client.post(ORDER_SELECT, json=request_body)

    assert len(assert_cards_response(response)) == 1
    assert "secret-access-token" not in response.text


def test_fhir_authorization_without_fhir_server_is_a_400_naming_fhir_server(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 20: fhirServer is REQUIRED when fhirAuthorization is sent; the error names
    the missing field, not the whole body."""
    del request_body["fhirServer"]
    request_body["fhirAuthorization"] = {
        "access_token": SECRET,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/Condition.read",
        "subject": "restless-cds",
    }

    response = client.post(ORDER_SELECT, json=request_body)

    issues = assert_operation_outcome(response, 400)
    assert expressions(issues) == ["fhirServer"]
    assert "secret-access-token" not in response.text
