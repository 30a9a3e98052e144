"""Errors -> HTTP: one place maps the ``cds.errors`` tree to status codes.

Every error body is a FHIR OperationOutcome naming the field (``expression``) and never
echoing request content or tokens. Bad input is a 4xx; an unexpected failure is a 500
with no detail (and a log line with the hook instance, never patient data).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from cds.errors import (
    EngineError,
    EvaluationLimitError,
    PrefetchUnavailableError,
    Problem,
    RequestError,
    UnknownServiceError,
)
from cds.security import AuthenticationError

__all__ = ["PayloadTooLargeError", "install_error_handlers", "operation_outcome"]

log = logging.getLogger("cds.hooks")


class PayloadTooLargeError(Exception):
    """The request body exceeds ``Settings.max_body_bytes``."""


def operation_outcome(
    status: int,
    problems: Sequence[Problem],
    code: str = "invalid",
    headers: dict[str, str] | None = None,
) -> Response:
    issues = [
        {
            "severity": "error",
            "code": code,
            "diagnostics": p.message,
            **({"expression": [p.where]} if p.where else {}),
        }
        for p in problems
    ]
    body = orjson.dumps({"resourceType": "OperationOutcome", "issue": issues})
    return Response(body, status_code=status, media_type="application/fhir+json", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; ``app.state.refused_evaluations`` counts the requests
    refused with 422 because the engine cannot evaluate them (a metric for operators)."""
    refused: Counter[str] = Counter()
    app.state.refused_evaluations = refused

    @app.exception_handler(RequestError)
    async def _bad_request(_: Request, exc: RequestError) -> Response:
        return operation_outcome(400, exc.problems)

    @app.exception_handler(RequestValidationError)
    async def _fastapi_validation(_: Request, exc: RequestValidationError) -> Response:
        problems = [
            Problem(".".join(str(p) for p in e["loc"]), str(e["msg"])) for e in exc.errors()
        ]
        return operation_outcome(400, problems)

    @app.exception_handler(AuthenticationError)
    async def _unauthenticated(_: Request, exc: AuthenticationError) -> Response:
        # no detail: why a token failed is for the log (cds.hooks.auth), not the caller
        return operation_outcome(
            401,
            [Problem("", "authentication required")],
            code="login",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    @app.exception_handler(UnknownServiceError)
    async def _unknown(_: Request, exc: UnknownServiceError) -> Response:
        return operation_outcome(404, [Problem("id", str(exc))], code="not-found")

    @app.exception_handler(PrefetchUnavailableError)
    async def _prefetch(_: Request, exc: PrefetchUnavailableError) -> Response:
        problems = [
            Problem(f"prefetch.{key}", "required data was not prefetched and cannot be fetched")
            for key in exc.missing
        ]
        return operation_outcome(412, problems, code="incomplete")

    @app.exception_handler(PayloadTooLargeError)
    async def _too_large(_: Request, exc: PayloadTooLargeError) -> Response:
        return operation_outcome(413, [Problem("(body)", str(exc))], code="too-costly")

    @app.exception_handler(EngineError)
    async def _engine(_: Request, exc: EngineError) -> Response:
        log.error("rule engine failure: %s", exc)
        return operation_outcome(
            503,
            [Problem("", "rule engine unavailable; retry")],
            code="transient",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(EvaluationLimitError)
    async def _unevaluable(_: Request, exc: EvaluationLimitError) -> Response:
        # permanent: the same request will fail the same way, so no Retry-After
        refused["evaluation-limit"] += 1
        log.warning("request cannot be evaluated (%d so far): %s", refused.total(), exc)
        return operation_outcome(
            422, [Problem("", f"this request cannot be evaluated: {exc}")], code="too-costly"
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> Response:
        code = "not-found" if exc.status_code == 404 else "processing"
        headers = dict(exc.headers) if exc.headers else None
        return operation_outcome(
            exc.status_code, [Problem("", str(exc.detail))], code=code, headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return operation_outcome(500, [Problem("", "internal error")], code="exception")
