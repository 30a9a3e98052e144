"""Routes of the playground and the dashboard: two pages, their script, and JSON/CSV data.

The pages fire the real CDS endpoints (``/cds-services/...``) from the browser; what
they cannot get there comes from ``/ui/api``: the bundled example requests, the
``explain`` report of a request, card Markdown rendered safely, dashboard aggregates.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import secrets
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from cds.authoring import explain_request
from cds.errors import CdsError
from cds.feedback import dashboard_data
from cds.hooks import SERVICES, parse_request, with_fetched_prefetch
from cds.settings import Settings
from cds.ui.markdown import render_markdown

__all__ = ["examples_dir", "install_ui", "ui_enabled"]

STATIC = Path(__file__).resolve().parent / "static"
MAX_DAYS = 3660
"""The widest dashboard date range (ten years): the daily series stays small."""


def examples_dir() -> Path:
    """The bundled example requests: packaged beside the rules, or the checkout's folder."""
    package_dir = Path(__file__).resolve().parent.parent
    packaged = package_dir / "_examples"
    return packaged if packaged.is_dir() else package_dir.parent / "fhir_examples"


def ui_enabled(settings: Settings) -> bool:
    """The ``ui`` setting, else on only when the service listens on loopback."""
    return settings.loopback_only if settings.ui is None else settings.ui


def require_operator(
    request: Request, x_operator_token: Annotated[str | None, Header()] = None
) -> None:
    """With an operator token configured, every data route needs it (constant-time check)."""
    settings: Settings = request.app.state.settings
    if settings.ui_token is None:
        return
    expected = settings.ui_token.get_secret_value().encode()
    if x_operator_token is None or not secrets.compare_digest(x_operator_token.encode(), expected):
        raise HTTPException(401, "operator token missing or wrong (header X-Operator-Token)")


api = APIRouter(prefix="/ui/api", dependencies=[Depends(require_operator)])
pages = APIRouter()


@pages.get("/playground", include_in_schema=False)
def playground() -> FileResponse:
    return FileResponse(STATIC / "playground.html", media_type="text/html")


@pages.get("/dashboard", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


def _examples() -> dict[str, Path]:
    return {
        p.stem: p
        for p in sorted(examples_dir().glob("*.json"))
        if not p.name.endswith(".expected.json")
    }


@api.get("/examples")
def list_examples() -> Response:
    """Name, hook and service of each bundled example request."""
    listed = []
    for name, path in _examples().items():
        hook = orjson.loads(path.read_bytes()).get("hook", "")
        service = next((s.id for s in SERVICES.values() if s.hook == hook), None)
        listed.append({"name": name, "hook": hook, "service": service})
    return Response(orjson.dumps(listed), media_type="application/json")


@api.get("/examples/{name}")
def get_example(name: str) -> Response:
    path = _examples().get(name)
    if path is None:
        raise HTTPException(404, "no bundled example with this name")
    return Response(path.read_bytes(), media_type="application/json")


class ExplainBody(BaseModel):
    service: str = Field(description="A service id from /cds-services")
    request: dict[str, Any]


@api.post("/explain")
async def explain(body: ExplainBody, request: Request) -> Response:
    """The ``restless-cds explain`` report of a request (after the same server-side fetch
    of missing prefetch the service does). Bad input: 400 naming the field."""
    service = SERVICES.get(body.service)
    if service is None:
        raise HTTPException(404, "no CDS service with this id")
    settings: Settings = request.app.state.settings
    try:
        # the same fetch, checks and 412s as a hook call (cds.hooks.routes)
        hook_request = await with_fetched_prefetch(request, parse_request(body.request), service)
        report = explain_request(
            hook_request.model_dump_json(exclude_none=True).encode(),
            request.app.state.rules.current,
            service=service,
            source_label=settings.source_label,
            override_system=settings.override_system_uri,
        )
    except CdsError as exc:
        raise HTTPException(400, str(exc)) from exc
    return Response(orjson.dumps(report), media_type="application/json")


class MarkdownBody(BaseModel):
    texts: list[str] = Field(max_length=50)


@api.post("/markdown")
def markdown(body: MarkdownBody) -> Response:
    """Card details as safe HTML (raw HTML escaped, unsafe link schemes refused)."""
    return Response(
        orjson.dumps({"html": [render_markdown(t) for t in body.texts]}),
        media_type="application/json",
    )


def _range(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The date range asked for; default the last 30 days (UTC)."""
    end = end or dt.datetime.now(dt.UTC).date()
    start = start or end - dt.timedelta(days=29)
    if start > end:
        raise HTTPException(400, "start: must be on or before end")
    if (end - start).days > MAX_DAYS:
        raise HTTPException(400, f"start: the range may span at most {MAX_DAYS} days")
    return start, end


DateParam = Annotated[dt.date | None, Query(description="YYYY-MM-DD, UTC, inclusive")]


async def _data(request: Request, start: dt.date | None, end: dt.date | None) -> dict[str, Any]:
    first, last = _range(start, end)
    ledger = request.app.state.card_ledger
    settings: Settings = request.app.state.settings
    read = functools.partial(dashboard_data, ledger.store, first, last)
    data = await ledger.read("dashboard", read, settings.feedback_timeout_seconds)
    found: dict[str, Any] = data.as_json()
    return found


@api.get("/dashboard")
async def dashboard_json(
    request: Request, start: DateParam = None, end: DateParam = None
) -> Response:
    return Response(orjson.dumps(await _data(request, start, end)), media_type="application/json")


CSV_COLUMNS = (
    "rule", "rules_version", "issued", "accepted", "overridden", "acceptance_rate",
    "override_rate", "suppressions_set", "override_reasons",
)  # fmt: skip


@api.get("/dashboard.csv")
async def dashboard_csv(
    request: Request, start: DateParam = None, end: DateParam = None
) -> Response:
    """The per-rule table the dashboard shows, as CSV (reasons as ``code=count;...``)."""
    data = await _data(request, start, end)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in data["rows"]:
        reasons = ";".join(f"{k}={v}" for k, v in row["override_reasons"].items())
        writer.writerow([*(row[c] for c in CSV_COLUMNS[:-1]), reasons])
    filename = f"restless-cds-dashboard-{data['start']}-{data['end']}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def install_ui(app: FastAPI, settings: Settings) -> None:
    """Mount the pages, their static files and data routes when the UI is enabled."""
    if not ui_enabled(settings):
        return
    if not settings.loopback_only and settings.ui_token is None:
        raise ValueError("ui_token is required to serve the UI on a non-loopback interface")
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(pages)
    app.include_router(api)
