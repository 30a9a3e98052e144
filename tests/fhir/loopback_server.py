"""A scriptable FHIR server on a loopback port, for hostile answers a real server will not
give (a page of 50,000 entries, next links crafted to leave the allowed base).

It is a fake remote, said so where it is used: it answers fixed bodies by path and records
every path requested, which is what the allowlist and page-bound tests must observe.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class LoopbackFhir:
    """``routes`` maps a path (query ignored) to a JSON-able body or raw bytes."""

    routes: dict[str, Any] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    base: str = ""

    def body(self, path: str) -> bytes | None:
        value = self.routes.get(path.partition("?")[0])
        if value is None:
            return None
        return value if isinstance(value, bytes) else orjson.dumps(value)


@contextmanager
def loopback_fhir(routes: dict[str, Any] | None = None) -> Iterator[LoopbackFhir]:
    fake = LoopbackFhir(dict(routes or {}))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.paths.append(self.path)
            body = fake.body(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("content-type", "application/fhir+json")
            payload = body if body is not None else b'{"resourceType":"OperationOutcome"}'
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            # the client may stop reading: that is what the page bound is for
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
