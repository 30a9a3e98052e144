"""End to end over real HTTP: uvicorn on a free loopback port in a background thread,
talked to with httpx, as a CDS Client would (#discovery, #calling-a-cds-service)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cds.app import create_app
from cds.settings import Settings
from tests.hooks.support import (
    assert_cards_response,
    assert_no_null_or_empty,
    assert_operation_outcome,
    example,
    service_url,
)

BODY_LIMIT = 64 * 1024


@pytest.fixture
def base_url(rules_dir: Path) -> Iterator[str]:
    """The service at ``http://127.0.0.1:<free port>``, stopped after the test."""
    app = create_app(Settings(rules_dir=rules_dir, max_body_bytes=BODY_LIMIT))
    config = uvicorn.Config(
        app,
        lifespan="on",
        ws="none",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive():
            listener.close()
            pytest.fail("uvicorn stopped during start-up (see the captured log)")
        if time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("uvicorn did not start within 10 s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
    assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def test_discovery_over_http_lists_the_three_services(http: httpx.Client) -> None:
    """Req 1, 3, 4, 5, 6, 13: GET {baseUrl}/cds-services is a 200 JSON services list."""
    response = http.get("/cds-services")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert_no_null_or_empty(body)
    assert sorted(s["id"] for s in body["services"]) == [
        "restless-order-select",
        "restless-order-sign",
        "restless-patient-view",
    ]


def test_the_restless_back_example_gets_a_dose_review_card(http: httpx.Client) -> None:
    """Req 1, 3, 16, 74, 83, 87, 92, 93: POSTing the published case returns a warning
    card naming amisulpride, with suggestions and a selectionBehavior."""
    request = example()

    response = http.post(service_url(request), json=request)

    (card,) = assert_cards_response(response)
    assert card["indicator"] == "warning"
    assert "amisulpride" in card["summary"]
    assert len(card["suggestions"]) == 2
    assert card["selectionBehavior"] == "at-most-one"


def test_errors_over_http_are_operation_outcomes(http: httpx.Client) -> None:
    """Req 14, 54, 76: 400, 404 and 412 reach the client as OperationOutcomes, and the
    connection keeps serving after them."""
    request: dict[str, Any] = example()
    del request["prefetch"]["conditions"]

    malformed = http.post(
        "/cds-services/restless-order-select",
        content=b'{"hook": ',
        headers={"content-type": "application/json"},
    )
    unknown = http.post("/cds-services/no-such-service", json=example())
    missing = http.post(service_url(request), json=request)
    after = http.post(service_url(example()), json=example())

    assert_operation_outcome(malformed, 400)
    assert_operation_outcome(unknown, 404)
    assert_operation_outcome(missing, 412)
    assert len(assert_cards_response(after)) == 1


def test_a_chunked_body_over_the_limit_is_a_413_and_the_server_lives_on(
    http: httpx.Client,
) -> None:
    """Req 14, 76: a streamed body with no Content-Length is cut off at the limit."""

    def chunks() -> Iterator[bytes]:
        for _ in range(4 * BODY_LIMIT // 4096):
            yield b" " * 4096

    response = http.post("/cds-services/restless-order-select", content=chunks())

    assert "content-length" not in response.request.headers
    assert_operation_outcome(response, 413)
    assert http.get("/cds-services").status_code == 200


def test_concurrent_calls_each_get_their_own_card(http: httpx.Client) -> None:
    """Req 74, 80: calls in parallel never share state: one card each, distinct uuids.
    Each call is its own hook instance (a repeated call of one hook instance gets the
    same card back under the same uuid, see test_cards)."""
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def call() -> None:
        request = example()
        request["hookInstance"] = str(uuid.uuid4())
        response = http.post(service_url(request), json=request)
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 8
    uuids = {assert_cards_response(r)[0]["uuid"] for r in results}
    assert len(uuids) == 8
