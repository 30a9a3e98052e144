"""Per-request context as a plain ASGI middleware: the request id (the client's
``X-Request-ID`` or a fresh one, echoed in the response), the request counter by service
and status, and the whole-request latency. A few microseconds per call (bench/metrics.py).
"""

from __future__ import annotations

from collections.abc import Collection
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds.observability import metrics
from cds.observability.logs import new_request_id, request_id

__all__ = ["RequestContextMiddleware", "service_label"]

_UNTRACKED = frozenset({"/metrics", "/healthz", "/readyz"})


def service_label(path: str, services: Collection[str]) -> str:
    """A bounded label for ``path``: a known service id (``/feedback`` appended), else
    ``discovery`` or ``other``; never a raw path a client chose."""
    parts = path.strip("/").split("/")
    if parts[0] != "cds-services":
        return "other"
    if len(parts) == 1:
        return "discovery"
    service = parts[1] if parts[1] in services else "unknown"
    return f"{service}/feedback" if parts[2:] == ["feedback"] else service


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, services: Collection[str]) -> None:
        self.app = app
        self.services = frozenset(services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                offered = value.decode("latin-1")
                break
        rid = new_request_id(offered)
        token = request_id.set(rid)
        started = perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope["path"]
            if path not in _UNTRACKED:
                metrics.count_request(service_label(path, self.services), status)
                metrics.observe_stage("request", perf_counter() - started)
            request_id.reset(token)
