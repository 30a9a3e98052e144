"""HTTP around the hooks: media types, methods, CORS for browser clients such as the
CDS Hooks Sandbox (#use-of-json, #http-status-codes, #cross-origin-resource-sharing)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.hooks.support import TestClient, assert_operation_outcome, service_url

SANDBOX = "https://sandbox.cds-hooks.org"


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "application/fhir+json"],
)
def test_hook_responses_are_application_json(
    client: TestClient, request_body: dict[str, Any], content_type: str | None
) -> None:
    """Req 1, 74: a JSON call is answered ``application/json`` whatever JSON media type
    the client declared, and the body parses as JSON."""
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(
        service_url(request_body),
        content=json.dumps(request_body).encode(),
        headers=headers,
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["cards"], list)


def test_an_authorization_header_does_not_stop_a_call(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 178: clients send ``Authorization: Bearer <JWT>``; the call still works (the
    service does not verify client JWTs yet, see the report)."""
    response = client.post(
        service_url(request_body),
        json=request_body,
        headers={"authorization": "Bearer eyJhbGciOiJFUzM4NCJ9.e30.c2ln"},
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cds-services/restless-order-select"),
        ("POST", "/cds-services"),
    ],
)
def test_a_wrong_method_is_a_405_with_an_allow_header(
    client: TestClient, method: str, path: str
) -> None:
    """Req 14, 76 (RFC 9110 15.5.6): a 405 OperationOutcome lists the allowed methods
    in ``Allow``."""
    response = client.request(method, path)

    assert_operation_outcome(response, 405)
    assert "allow" in response.headers


def test_cors_preflight_from_the_sandbox_is_allowed(client: TestClient) -> None:
    """Req 208: CDS Services SHALL support CORS; the Sandbox preflights its POST with
    ``Authorization`` and ``Content-Type`` in Access-Control-Request-Headers."""
    response = client.options(
        "/cds-services/restless-order-select",
        headers={
            "origin": SANDBOX,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )

    assert response.status_code in (200, 204)
    assert response.headers.get("access-control-allow-origin") in ("*", SANDBOX)
    assert "POST" in response.headers.get("access-control-allow-methods", "")
    allowed = response.headers.get("access-control-allow-headers", "").lower()
    assert "authorization" in allowed or allowed == "*"


def test_cors_headers_on_discovery_and_calls(
    client: TestClient, request_body: dict[str, Any]
) -> None:
    """Req 208: a browser client can read discovery and service responses."""
    discovery = client.get("/cds-services", headers={"origin": SANDBOX})
    call = client.post(service_url(request_body), json=request_body, headers={"origin": SANDBOX})

    for response in (discovery, call):
        assert response.status_code == 200
        assert response.headers.get("access-control-allow-origin") in ("*", SANDBOX)


def test_unknown_paths_are_404_operation_outcomes(client: TestClient) -> None:
    """Req 4, 14: only the discovery and service endpoints exist; no docs or schema."""
    for path in ("/", "/docs", "/openapi.json", "/cds-services/restless-order-select/x"):
        assert_operation_outcome(client.get(path), 404)
