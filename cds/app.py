"""``create_app(settings)``: FastAPI wiring only.

The rule base (value sets, phrases, compiled durable-rules ruleset) is built in the
lifespan, not at import, and kept on ``app.state.rules`` in a holder that a watcher task
swaps when the rule files change; routes reach it through dependencies. Invalid rules
stop start-up with every ``file:line:col`` problem listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from cds import __version__
from cds.feedback import FeedbackStore
from cds.hooks import install_error_handlers, router
from cds.hooks.feedback import CardLedger
from cds.reload import RuleBaseHolder, watch_rules
from cds.rulebase import load_rulebase
from cds.security import JwtVerifier, TrustedIssuer, load_trusted_issuers, sandbox_issuer
from cds.settings import Settings
from cds.ui import install_ui

__all__ = ["create_app"]

log = logging.getLogger("cds")


def _configure_logging(level: str) -> None:
    """Give the ``cds`` loggers a handler once; uvicorn configures only its own."""
    logger = logging.getLogger("cds")
    logger.setLevel(level.upper())
    # httpx logs each URL at INFO; FHIR URLs carry patient ids, which never go to a log
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logger.level))
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        logger.addHandler(handler)


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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    _configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rulebase = load_rulebase(settings.rules_dir)
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
        app.state.card_ledger = CardLedger(store)
        log.info("feedback store: %s", settings.feedback_store_label)
        app.state.fetch_policy = settings.fetch_policy
        if verifier is None:
            log.warning(
                "CDS client authentication is OFF: every call is accepted unsigned (%s)",
                "loopback only" if settings.loopback_only else "REMOTE CALLS ALLOWED",
            )
        else:
            log.info("CDS client JWTs required; trusted issuers: %s", ", ".join(verifier.issuers))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            holder.close()
            await app.state.fhir_client.aclose()
            await app.state.card_ledger.settle()  # no card record is lost on shutdown
            store.close()
            if verifier is not None:
                await verifier.aclose()

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
    install_error_handlers(app)
    app.include_router(router)
    install_ui(app, settings)
    return app
