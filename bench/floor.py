"""The floor for ``bench/http.py``: the least a hook service can do on the same uvicorn.

A bare ASGI app that reads the whole body, parses it with orjson (as the service must)
and answers ``{"cards": []}``. Served by the same uvicorn, loop and HTTP parser as the
service, so the distance between the two is the service's own work.
"""

from __future__ import annotations

import orjson
from starlette.types import Receive, Scope, Send

__all__ = ["app"]

_EMPTY = b'{"cards":[]}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_EMPTY))]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    status = 200
    try:
        orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        status = 400
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _EMPTY})
