"""``create_app(settings)``: FastAPI wiring only.

The rule base (value sets, phrases, compiled durable-rules ruleset) is built in the
lifespan, not at import, and kept on ``app.state.rules`` in a holder that a watcher task
swaps when the rule files change; routes reach it through dependencies. Invalid rules
stop start-up with every ``file:line:col`` problem listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from cds import __version__
from cds.authoring import load_checked_rulebase
from cds.feedback import FeedbackStore
from cds.fhir import OptionalRecall, fetch_policy
from cds.hooks import SERVICES, CardLedger, health_router, install_error_handlers, router
from cds.observability import configure_logging
from cds.observability.middleware import RequestContextMiddleware
from cds.reload import RuleBaseHolder, watch_rules
from cds.rulebase import RuleBase
from cds.security import JwtVerifier, TrustedIssuer, load_trusted_issuers, sandbox_issuer
from cds.settings import Settings, load_settings, settings_from_handoff
from cds.ui import install_ui

__all__ = ["app_from_handoff", "create_app"]

log = logging.getLogger("cds")


def _verifier(settings: Settings) -> JwtVerifier | None:
    """The JWT verifier for the configured issuers, or ``None`` when none are."""
    issuers: list[TrustedIssuer] = []
    if settings.trusted_issuers_file is not None:
        issuers += load_trusted_issuers(settings.trusted_issuers_file)
    if settings.trust_cds_hooks_sandbox:
        issuers.append(sandbox_issuer())
    if not issuers:
        return None
    return JwtVerifier(issuers, leeway=settings.jwt_leeway_seconds)


def app_from_handoff() -> FastAPI:
    """uvicorn's factory in ``serve``'s workers: the settings ``serve`` handed down."""
    return create_app(settings_from_handoff(), tune_gc=True)


GC_THRESHOLDS = (50_000, 20, 100)
"""A hook call allocates tens of thousands of containers (a 1,000-resource record: ~30,000
dicts and lists) that die together when it ends; Python's default (700, 10, 10) would
run a collection every 700 of them and a full one every 70,000, each walking everything
alive. See README "Performance" for what this did to the 1,000-resource tail."""


def _tune_gc() -> None:
    """After start-up: what is alive now (modules, rules, models) lives as long as the
    process, so collectors stop walking it (``gc.freeze``), and run less often.

    ``serve`` starts with the collector off and this turns it back on, without collecting
    first (the pattern Python's ``gc.freeze`` documentation gives): start-up leaves about
    3,000 unreachable objects (under 1 MB, kept frozen), and the full collection that
    would free them walked all 250,000 live ones, 0.1-0.15 s of every start."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    gc.enable()


def create_app(
    settings: Settings | None = None,
    *,
    rulebase: RuleBase | None = None,
    tune_gc: bool = False,
) -> FastAPI:
    """The service. ``tune_gc`` (``serve``'s workers) freezes what start-up built out of
    the garbage collector's reach; a process that builds many apps (tests) leaves it.

    ``rulebase``, already loaded by ``load_checked_rulebase`` (``serve`` with one worker,
    which checked the rules before starting uvicorn), is served by the first lifespan
    instead of loading the rules a second time; a later lifespan loads them afresh."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    preloaded = [rulebase] if rulebase is not None else []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # what serve checks; the first lifespan owns a rule base handed in
        rulebase = preloaded.pop() if preloaded else load_checked_rulebase(settings.rules_dir)
        holder = RuleBaseHolder(rulebase)
        app.state.rules = holder
        log.info("rules %s loaded from %s", rulebase.version, rulebase.directory)
        watcher = (
            asyncio.create_task(watch_rules(holder, settings.reload_interval_seconds))
            if settings.reload_interval_seconds > 0
            else None
        )
        verifier = _verifier(settings)
        app.state.verifier = verifier
        app.state.fhir_client = httpx.AsyncClient(follow_redirects=False)
        app.state.pseudonym_key = settings.patient_pseudonym_key()
        store = await asyncio.to_thread(FeedbackStore, settings.feedback_database_url)
        app.state.card_ledger = CardLedger.for_settings(store, settings)
        log.info("feedback store: %s", settings.feedback_store_label)
        app.state.fetch_policy = fetch_policy(settings)
        app.state.optional_recall = OptionalRecall(settings.fhir_optional_remember_seconds)
        if verifier is None:
            log.warning(
                "CDS client authentication is OFF: every call is accepted unsigned (%s)",
                "loopback only" if settings.loopback_only else "REMOTE CALLS ALLOWED",
            )
        else:
            log.info("CDS client JWTs required; trusted issuers: %s", ", ".join(verifier.issuers))
        app.state.shutting_down = False
        if tune_gc:
            _tune_gc()
        _stop_within(settings.graceful_shutdown_seconds + STOP_MARGIN_SECONDS)
        try:
            yield
        finally:
            app.state.shutting_down = True
            await _shut_down(
                app,
                watcher=watcher,
                holder=holder,
                store=store,
                verifier=verifier,
                settings=settings,
            )

    app = FastAPI(
        title="restless-cds",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(RequestContextMiddleware, services=SERVICES.keys())
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(router)
    install_ui(app, settings)
    return app


STOP_MARGIN_SECONDS = 2.0
"""Beyond the graceful timeout, how long a stopping worker may still take to exit."""


def _stop_within(seconds: float) -> None:
    """After SIGTERM or SIGINT, end the process within ``seconds`` even if a request pins
    the event loop (uvicorn's graceful timeout cannot interrupt CPU-bound work).

    The signal handler (uvicorn's, chained) runs between bytecodes on the main thread,
    so a watchdog thread it starts can always end the process. Only installed when the
    app runs on the main thread (``serve``), never in tests' in-thread servers."""
    if threading.current_thread() is not threading.main_thread():
        return

    def watchdog() -> None:
        time.sleep(seconds)
        log.error("worker still running %s s after the stop signal: exiting", seconds)
        logging.shutdown()
        os._exit(1)

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
            threading.Thread(target=watchdog, name="stop-watchdog", daemon=True).start()
            if callable(previous):
                previous(number, frame)

        signal.signal(signum, handler)


async def _shut_down(
    app: FastAPI,
    *,
    watcher: asyncio.Task[None] | None,
    holder: RuleBaseHolder,
    store: FeedbackStore,
    verifier: JwtVerifier | None,
    settings: Settings,
) -> None:
    """Settle pending card writes within the graceful timeout, then close the store and
    the JWKS client whatever happened before."""
    try:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        holder.close()
        await app.state.fhir_client.aclose()
        async with asyncio.timeout(settings.graceful_shutdown_seconds):
            await app.state.card_ledger.settle()  # no card record is lost on shutdown
    except TimeoutError:
        limit = settings.graceful_shutdown_seconds
        log.error("card records still pending after %s s at shutdown", limit)
    except Exception as exc:
        log.error("shutdown step failed: %s", type(exc).__name__)
    finally:
        try:
            app.state.card_ledger.close(timeout=1.0)  # the writer thread; queue settled above
            store.close()
        finally:
            if verifier is not None:
                await verifier.aclose()
