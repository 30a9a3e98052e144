"""uvicorn's HTTP protocol with a header read timeout: a connection that has not sent a
complete request head within ``HEADER_TIMEOUT_SECONDS`` is closed (a slow-header client
would otherwise hold it forever; uvicorn's keep-alive timer stops at the first byte)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HEADER_TIMEOUT_SECONDS", "HttpProtocol"]

HEADER_TIMEOUT_SECONDS = float(os.environ.get("RESTLESS_CDS_HEADER_READ_TIMEOUT_SECONDS", "10"))


class HttpProtocol(HttpToolsProtocol):
    """httptools protocol whose request heads must arrive within the header timeout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()
