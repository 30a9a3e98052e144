"""Public key sets (JWKS): parsing them strictly, and fetching them sparingly.

Only keys usable with the accepted algorithms survive parsing: an EC P-384 key becomes an
ES384 key and an RSA key (2048 bits or more) an RS384 key, each bound to that one
algorithm, so a token can never choose how its key is interpreted (the HS256-with-the-
public-key attack has nothing to bind to). Keys that say another ``alg``, are not for
signatures, or carry private material are skipped with a log line; the rest of the set
still works.

``JwksCache`` keeps one key set per (issuer, URL). A set is fetched on first use, again
when it is older than ``max_age``, and when a token names a ``kid`` it does not hold (key
rotation), but never more than once per ``refetch_interval`` per (issuer, URL): a flood of
tokens with invented ``kid``s costs the client's JWKS endpoint one request a minute. A
failed fetch refuses the token (fail closed). Sets loaded from files never expire.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from cds.errors import Problem
from cds.security.errors import AuthenticationError, IssuerConfigError, shown

__all__ = ["ALLOWED_ALGORITHMS", "JwksCache", "KeySet", "load_jwks_file", "parse_jwks"]

log = logging.getLogger("cds.security")

ALLOWED_ALGORITHMS = ("ES384", "RS384")
"""The algorithms CDS Hooks 2.0 recommends (#jwt-signing-algorithm); nothing else."""

MIN_RSA_BITS = 2048
MAX_KEYS = 100
MAX_JWKS_BYTES = 256 * 1024

KeySet = Mapping[str, PyJWK]
"""Usable keys of one JWKS by ``kid``, each bound to its one algorithm."""


def _algorithm_for(jwk: Mapping[str, object]) -> str | None:
    """The one accepted algorithm this key's type allows, or ``None``."""
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-384":
        return "ES384"
    if jwk.get("kty") == "RSA":
        return "RS384"
    return None


def _usable_key(jwk: Mapping[str, object]) -> PyJWK | str:
    """The key bound to its algorithm, or the reason it cannot be used."""
    if "d" in jwk:
        return "private key material in a public key set"
    if jwk.get("use", "sig") != "sig":
        return f"use {shown(jwk.get('use'))} is not sig"
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return "key_ops does not include verify"
    algorithm = _algorithm_for(jwk)
    if algorithm is None:
        return f"key type {shown(jwk.get('kty'))}/{shown(jwk.get('crv'))} is not EC P-384 or RSA"
    declared = jwk.get("alg")
    if declared is not None and declared != algorithm:
        return f"alg {shown(declared)} is not {algorithm} (the only one for this key type)"
    try:
        key = PyJWK(dict(jwk), algorithm=algorithm)
    except (PyJWTError, ValueError, TypeError):
        return "not a valid JWK"
    if isinstance(key.key, RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        return f"RSA key under {MIN_RSA_BITS} bits"
    return key


def parse_jwks(data: object, source: str) -> dict[str, PyJWK]:
    """The usable keys of a decoded JWKS; raises ``ValueError`` if it is not a key set.

    A ``kid`` that appears twice is dropped (CDS Hooks requires it to be unique; which key
    was meant cannot be known).
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWK Set (an object with a 'keys' list)")
    entries: list[object] = data["keys"]
    if len(entries) > MAX_KEYS:
        raise ValueError(f"more than {MAX_KEYS} keys")
    keys: dict[str, PyJWK] = {}
    duplicates: set[str] = set()
    for index, jwk in enumerate(entries):
        kid = jwk.get("kid") if isinstance(jwk, Mapping) else None
        if not isinstance(jwk, Mapping) or not isinstance(kid, str) or not kid:
            log.warning("JWKS %s: key %d has no kid; skipped", source, index)
            continue
        if kid in keys or kid in duplicates:
            duplicates.add(kid)
            keys.pop(kid, None)
            log.warning("JWKS %s: kid %s appears more than once; not used", source, shown(kid))
            continue
        usable = _usable_key(jwk)
        if isinstance(usable, str):
            log.warning("JWKS %s: kid %s skipped: %s", source, shown(kid), usable)
            continue
        keys[kid] = usable
    return keys


def load_jwks_file(path: Path) -> dict[str, PyJWK]:
    """Read a key file once, at start-up; an unusable file is a configuration error."""
    try:
        keys = parse_jwks(json.loads(path.read_text(encoding="utf-8")), str(path))
    except (OSError, ValueError) as exc:
        raise IssuerConfigError([Problem(str(path), f"unusable JWKS file: {exc}")]) from exc
    if not keys:
        raise IssuerConfigError([Problem(str(path), "no usable ES384 or RS384 key")])
    return keys


@dataclass
class _Cached:
    keys: dict[str, PyJWK]
    fetched_at: float


class JwksCache:
    """Key sets by (issuer, URL), fetched over ``http`` with the limits above.

    Use it from one event loop (the app's): its per-URL locks belong to that loop.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        refetch_interval: float = 60.0,
        max_age: float = 3600.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age < refetch_interval:
            raise ValueError("max_age must be at least refetch_interval")
        self._http = http
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._timeout = timeout
        self._clock = clock
        self._sets: dict[tuple[str, str], _Cached] = {}
        self._attempts: dict[tuple[str, str], float] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _fresh(self, cached: _Cached | None) -> bool:
        return cached is not None and self._clock() - cached.fetched_at <= self._max_age

    async def find(self, issuer: str, url: str, kid: str) -> PyJWK | None:
        """The key ``kid`` of ``issuer``'s set at ``url``; ``None`` if the set lacks it.

        Raises ``AuthenticationError`` if the set had to be fetched and could not be.
        """
        slot = (issuer, url)
        cached = self._sets.get(slot)
        if cached is not None and self._fresh(cached) and kid in cached.keys:
            return cached.keys[kid]
        lock = self._locks.setdefault(slot, asyncio.Lock())
        async with lock:
            # another request may have fetched while this one waited
            cached = self._sets.get(slot)
            if cached is not None and self._fresh(cached) and kid in cached.keys:
                return cached.keys[kid]
            last = self._attempts.get(slot)
            if last is not None and self._clock() - last < self._refetch_interval:
                if cached is not None and self._fresh(cached):
                    return None  # fetched recently and the kid is not there
                raise AuthenticationError(f"JWKS {url} unavailable (last fetch failed)")
            self._attempts[slot] = self._clock()
            keys = await self._fetch(url)
            self._sets[slot] = _Cached(keys, self._clock())
            log.info("JWKS %s fetched for %s: %d usable keys", url, shown(issuer), len(keys))
            return keys.get(kid)

    async def _fetch(self, url: str) -> dict[str, PyJWK]:
        try:
            async with asyncio.timeout(self._timeout):
                body = await self._get(url)
            return parse_jwks(json.loads(body), url)
        except TimeoutError as exc:
            raise AuthenticationError(f"JWKS {url}: timed out") from exc
        except (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL, RuntimeError) as exc:
            # RuntimeError: the HTTP client was closed (the app is shutting down)
            raise AuthenticationError(f"JWKS {url}: {type(exc).__name__}") from exc
        except ValueError as exc:
            raise AuthenticationError(f"JWKS {url}: {exc}") from exc

    async def _get(self, url: str) -> bytes:
        request = self._http.build_request(
            "GET", url, headers={"Accept": "application/json"}, timeout=self._timeout
        )
        response = await self._http.send(request, stream=True, follow_redirects=False)
        try:
            if response.status_code != httpx.codes.OK:
                raise ValueError(f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_JWKS_BYTES:
                    raise ValueError(f"response over {MAX_JWKS_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            await response.aclose()
