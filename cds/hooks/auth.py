"""Every call's bearer JWT, verified when trusted issuers are configured (#trusting-cds-clients).

The audience is the configured public URL plus the path called, never the request's own
Host header (which a client controls). With no issuer configured the verifier is absent
and calls are accepted unsigned; ``restless-cds serve`` allows that only on loopback.
"""

from __future__ import annotations

import datetime as dt
import logging

from fastapi import Request

from cds.hooks.feedback import CardLedger
from cds.security import AuthenticationError, Claims, JwtVerifier, bearer_token

__all__ = ["authenticate_client"]

log = logging.getLogger("cds.hooks")


async def authenticate_client(request: Request) -> Claims | None:
    """FastAPI dependency: the verified claims, or ``None`` when auth is off."""
    verifier: JwtVerifier | None = getattr(request.app.state, "verifier", None)
    if verifier is None:
        return None
    bases = request.app.state.settings.public_base_urls
    audience = [f"{base}{request.url.path}" for base in bases]
    try:
        claims = await verifier.verify(bearer_token(request.headers.get("authorization")), audience)
        await _first_use_across_replicas(request, claims)
    except AuthenticationError as exc:
        log.warning("refused a call to %s: %s", request.url.path, exc)
        raise
    return claims


async def _first_use_across_replicas(request: Request, claims: Claims) -> None:
    """The verifier remembers token ids per process; the store shares them between
    workers and replicas, so a token replayed to any of them is refused."""
    ledger: CardLedger | None = getattr(request.app.state, "card_ledger", None)
    if ledger is None:
        return
    leeway = request.app.state.settings.jwt_leeway_seconds
    expires = dt.datetime.fromtimestamp(claims.exp + leeway, dt.UTC)
    if not await ledger.first_token_use(claims.iss, claims.jti, expires):
        raise AuthenticationError("jti already used (seen by another worker or replica)")
