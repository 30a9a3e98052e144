"""Slow and vanishing clients against ``restless-cds serve``: a request head or body that
does not arrive in time is cut, and a client gone mid-body is one log line."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.serving import Served, serve

SERVICE = "/cds-services/restless-order-select"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path: Path = tmp_path_factory.mktemp("slow")
    env = {
        "RESTLESS_CDS_HEADER_READ_TIMEOUT_SECONDS": "1",
        "RESTLESS_CDS_BODY_READ_TIMEOUT_SECONDS": "1",
        "RESTLESS_CDS_RELOAD_INTERVAL_SECONDS": "0",
        "RESTLESS_CDS_LOG_FORMAT": "json",
    }
    with serve(tmp_path, env=env) as served:
        yield served


def _connect(server: Served) -> socket.socket:
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=5)


def _closed_within(connection: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``connection`` (reading what it sent)."""
    started = time.monotonic()
    connection.settimeout(seconds)
    while connection.recv(4096):
        pass
    return time.monotonic() - started


def test_a_slow_request_head_is_cut(server: Served) -> None:
    with _connect(server) as connection:
        connection.sendall(b"POST " + SERVICE.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # a header line now and then, never the end of the head
            time.sleep(0.4)
            connection.sendall(b"X-Slow: 1\r\n")
        assert _closed_within(connection, 3) < 3


def test_a_slow_body_gets_408(server: Served) -> None:
    with _connect(server) as connection:
        head = f"POST {SERVICE} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
        connection.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n{")
        connection.settimeout(5)
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_client_gone_mid_body_is_one_log_line(server: Served) -> None:
    with _connect(server) as connection:
        head = f"POST {SERVICE} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        connection.sendall(head.encode() + b'{"hook": ')
        time.sleep(0.2)
    time.sleep(0.5)
    log = server.log()
    assert "Traceback" not in log
    assert len([line for line in log.splitlines() if "client disconnected" in line]) == 1
