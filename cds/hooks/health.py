"""``/healthz`` (the process answers), ``/readyz`` (rules loaded, store reachable, not
shutting down) and ``/metrics``: for load balancers and Prometheus, so neither behind
client JWT auth nor listed in discovery."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from cds.observability import metrics

__all__ = ["health_router"]

health_router = APIRouter()


def _json(status: int, body: dict[str, object]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@health_router.get("/healthz")
async def healthz() -> Response:
    return _json(200, {"status": "ok"})


@health_router.get("/readyz")
async def readyz(request: Request) -> Response:
    state = request.app.state
    checks = {
        "rules": getattr(state, "rules", None) is not None,
        "store": await _store_reachable(request),
        "accepting": not getattr(state, "shutting_down", True),
    }
    ready = all(checks.values())
    return _json(200 if ready else 503, {"status": "ready" if ready else "not-ready", **checks})


async def _store_reachable(request: Request) -> bool:
    ledger = getattr(request.app.state, "card_ledger", None)
    if ledger is None:
        return False
    try:
        async with asyncio.timeout(request.app.state.settings.store_timeout_seconds * 4):
            await asyncio.to_thread(ledger.store.ping)
    except (TimeoutError, SQLAlchemyError):
        return False
    return True


@health_router.get("/metrics")
async def prometheus_metrics() -> Response:
    body = await asyncio.to_thread(metrics.exposition)
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)
