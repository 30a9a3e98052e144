"""Query values never reach a log; request ids are bounded; service labels are bounded."""

from __future__ import annotations

import json
import logging

import pytest

from cds.observability.logs import JsonFormatter, RedactQueryFilter, new_request_id, redact_target
from cds.observability.middleware import service_label


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/cds-services", "/cds-services"),
        ("/x?access_token=abc.def", "/x?access_token=REDACTED"),
        ("/x?a=1&b=&c", "/x?a=REDACTED&b=REDACTED&c=REDACTED"),
        ("/x?%%%", "/x?REDACTED=REDACTED"),
        ("/x?=secret", "/x?REDACTED=REDACTED"),
        ("/x?eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln", "/x?REDACTED=REDACTED"),
    ],
)
def test_query_values_are_redacted(target: str, logged: str) -> None:
    assert redact_target(target) == logged


def test_the_access_log_line_loses_its_query_values() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/cds-services?access_token=s3cret", "1.1", 400),
        None,
    )
    assert RedactQueryFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert "s3cret" not in line["message"]
    assert "access_token=REDACTED" in line["message"]


def test_request_ids_are_kept_only_when_short_and_plain() -> None:
    assert new_request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for offered in (None, "", "a b", "x" * 65, "id\nforged: 1"):
        made = new_request_id(offered)
        assert len(made) == 32
        assert made != offered


def test_service_labels_never_echo_a_client_path() -> None:
    services = {"restless-order-select"}
    assert service_label("/cds-services", services) == "discovery"
    assert service_label("/cds-services/restless-order-select", services) == "restless-order-select"
    assert (
        service_label("/cds-services/restless-order-select/feedback", services)
        == "restless-order-select/feedback"
    )
    assert service_label("/cds-services/patient-12345", services) == "unknown"
    assert service_label("/anything/else", services) == "other"
