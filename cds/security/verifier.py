"""Verifying a CDS client's bearer JWT (CDS Hooks 2.0 #trusting-cds-clients).

PyJWT does the cryptography: the signature, the algorithm allowlist, ``iss``, ``aud`` and
the presence of the required claims, always with a key bound to one algorithm (see
``cds.security.jwks``). The header is checked before any key is looked for, so a token
that names ``none``, HS256 or an unlisted algorithm never reaches key selection.

The time claims are checked here, against one injectable clock shared with the replay
cache: ``exp`` (required), ``iat`` (required, not in the future beyond the leeway),
``nbf`` (honoured if present), each a JSON number, and a token may not live longer than
``max_lifetime`` (``exp - iat``), which also bounds how long its ``jti`` is remembered.

Before any JSON is parsed, the token's length (``MAX_TOKEN_CHARS``) and the nesting depth
of its decoded header and payload (``MAX_JSON_DEPTH``) are bounded in one linear pass: a
payload of deeply nested arrays made ``json.loads`` raise ``RecursionError``, a 500 before
authentication. Every malformed token is an ``AuthenticationError`` (401).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx
import jwt
from jwt import PyJWK
from jwt.exceptions import (
    DecodeError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidJTIError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from cds.errors import Problem
from cds.security.errors import AuthenticationError, IssuerConfigError, shown
from cds.security.issuers import TrustedIssuer
from cds.security.jwks import ALLOWED_ALGORITHMS, JwksCache, load_jwks_file
from cds.security.replay import ReplayCache, ReplayCacheFullError

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_TOKEN_CHARS",
    "Claims",
    "JwtVerifier",
    "audience_hint",
    "bearer_token",
    "service_audience",
]

MAX_TOKEN_CHARS = 16 * 1024
MAX_ID_CHARS = 256
MAX_JSON_DEPTH = 16
"""Header and payload nesting allowed; real claims (``fhirContext``, ``cnf``) are 2-4 deep."""
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "jti"]

_COMPACT_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9._~+/-]{0,19}")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth_within(data: bytes, limit: int) -> bool:
    """Whether the JSON text ``data`` nests arrays and objects at most ``limit`` deep.

    Linear: strings are cut out first (a bracket inside one does not count), then only
    the brackets are visited. Malformed text is left for the JSON parser to refuse.
    """
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return False
        else:
            depth -= 1
    return True


def _decoded_part(part: str, name: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise AuthenticationError(f"malformed token ({name} is not base64url)") from exc


def bearer_token(authorization_header: str | None) -> str:
    """The JWT of an ``Authorization: Bearer <JWT>`` header (the scheme in any case).

    Refuses a missing header, another scheme, and anything not shaped like a compact JWS
    (an empty signature part passes here so ``alg: none`` is refused by name later).
    """
    if authorization_header is None or not authorization_header.strip():
        raise AuthenticationError("no Authorization header")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        # the scheme is shown only when it looks like one: a bare token must not be logged
        named = shown(scheme) if _SCHEME.fullmatch(scheme) else "(not a scheme)"
        raise AuthenticationError(f"Authorization scheme {named} is not Bearer")
    token = token.strip()
    if not token:
        raise AuthenticationError("empty bearer token")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationError(f"bearer token over {MAX_TOKEN_CHARS} characters")
    if not _COMPACT_JWT.fullmatch(token):
        raise AuthenticationError("bearer token is not a compact JWT (three base64url parts)")
    return token


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def _loopback_neutral(url: str) -> str:
    for name in _LOOPBACK_NAMES:
        url = url.replace(f"//{name}:", "//loopback:").replace(f"//{name}/", "//loopback/")
    return url


def audience_hint(claimed: Any, expected: Sequence[str]) -> str:
    """Why a near-miss ``aud`` missed, for the log: trailing slash or loopback name."""
    claims = claimed if isinstance(claimed, list) else [claimed]
    for value in (c for c in claims if isinstance(c, str) and len(c) <= MAX_TOKEN_CHARS):
        for want in expected:
            if value.rstrip("/") == want.rstrip("/"):
                return " (they differ only by a trailing slash)"
            if _loopback_neutral(value.rstrip("/")) == _loopback_neutral(want.rstrip("/")):
                return (
                    " (they differ only by localhost vs 127.0.0.1: the client must use the"
                    " URL in PUBLIC_BASE_URL, or list both there, comma-separated)"
                )
    return ""


def service_audience(public_base_url: str, service_id: str) -> str:
    """The ``aud`` a client must send for a service: its endpoint's public URL.

    ``public_base_url`` is configured (e.g. ``https://cds.example.org``), never read from
    the request's Host header, which the caller controls.
    """
    return f"{public_base_url.rstrip('/')}/cds-services/{service_id}"


@dataclass(frozen=True)
class Claims:
    """The verified claims of one call; ``payload`` holds every claim as sent."""

    iss: str
    jti: str
    exp: float
    iat: float
    tenant: str | None
    sub: str | None
    kid: str
    alg: str
    payload: Mapping[str, Any] = field(repr=False)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class JwtVerifier:
    """Verifies bearer JWTs from the configured ``TrustedIssuer``s.

    Key files are read here, at construction, so a bad one stops start-up. Key URLs are
    fetched with ``http_client`` (not closed here) or a client built on ``transport``
    (closed by ``aclose``). Use one verifier per process, from the app's event loop.
    """

    def __init__(
        self,
        issuers: Iterable[TrustedIssuer],
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        leeway: float = 30.0,
        max_lifetime: float = 600.0,
        jwks_refetch_interval: float = 60.0,
        jwks_max_age: float = 3600.0,
        jwks_timeout: float = 5.0,
        replay_cache_size: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if leeway < 0 or max_lifetime <= 0:
            raise ValueError("leeway must be >= 0 and max_lifetime > 0")
        self._issuers: dict[str, TrustedIssuer] = {}
        for issuer in issuers:
            if issuer.iss in self._issuers:
                raise IssuerConfigError([Problem(issuer.iss, "issuer configured twice")])
            self._issuers[issuer.iss] = issuer
        self._file_keys = {
            issuer.iss: load_jwks_file(issuer.jwks_file)
            for issuer in self._issuers.values()
            if issuer.jwks_file is not None
        }
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(
            transport=transport, timeout=jwks_timeout, follow_redirects=False
        )
        self._jwks = JwksCache(
            self._http,
            refetch_interval=jwks_refetch_interval,
            max_age=jwks_max_age,
            timeout=jwks_timeout,
            clock=clock,
        )
        self._replay = ReplayCache(replay_cache_size, clock=clock)
        self._leeway = leeway
        self._max_lifetime = max_lifetime
        self._clock = clock

    @property
    def issuers(self) -> tuple[str, ...]:
        """The trusted ``iss`` values, for the start-up log."""
        return tuple(self._issuers)

    async def aclose(self) -> None:
        """Close the HTTP client if this verifier made it."""
        if self._owns_client:
            await self._http.aclose()

    async def verify(self, token: str, audience: str | Sequence[str]) -> Claims:
        """The claims of ``token`` if a trusted client signed it for ``audience``.

        ``audience`` is the public URL of the endpoint being called (or several, one per
        accepted public base URL), compared exactly with ``aud`` (a string, or a list
        containing one of them). Raises ``AuthenticationError``.
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError(f"token over {MAX_TOKEN_CHARS} characters")
        header, unverified = _unverified_parts(token)
        alg, kid = _checked_header(header)
        issuer = self._trusted_issuer(unverified.get("iss"))
        key = await self._key(issuer, header.get("jku"), kid)
        if key.algorithm_name != alg:
            raise AuthenticationError(
                f"alg {alg} does not match key {shown(kid)} ({key.algorithm_name})"
            )
        payload = self._decode(token, key, audience, issuer, unverified)
        exp, iat = self._check_times(payload)
        jti: str = payload["jti"]  # a string: PyJWT's verify_jti
        if not jti or len(jti) > MAX_ID_CHARS:
            raise AuthenticationError(f"jti must be 1 to {MAX_ID_CHARS} characters")
        tenant = self._check_tenant(issuer, payload.get("tenant"))
        sub = payload.get("sub")
        self._check_replay(issuer.iss, jti, exp)
        return Claims(
            iss=issuer.iss,
            jti=jti,
            exp=exp,
            iat=iat,
            tenant=tenant,
            sub=sub if isinstance(sub, str) else None,
            kid=kid,
            alg=alg,
            payload=MappingProxyType(payload),
        )

    def _trusted_issuer(self, iss: object) -> TrustedIssuer:
        if not isinstance(iss, str):
            raise AuthenticationError("missing claim iss (or not a string)")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise AuthenticationError(f"issuer {shown(iss)} is not trusted")
        return issuer

    async def _key(self, issuer: TrustedIssuer, jku: object, kid: str) -> PyJWK:
        if jku is not None and jku not in issuer.allowed_jku:
            raise AuthenticationError(f"jku {shown(jku)} is not allowed for {shown(issuer.iss)}")
        file_keys = self._file_keys.get(issuer.iss)
        if file_keys is not None:
            key = file_keys.get(kid)
            source = str(issuer.jwks_file)
        else:
            url = jku if isinstance(jku, str) else issuer.jwks_url
            if url is None:
                raise AuthenticationError(
                    f"no jku header, and no jwks_url configured for {shown(issuer.iss)}"
                )
            key = await self._jwks.find(issuer.iss, url, kid)
            source = url
        if key is None:
            raise AuthenticationError(f"unknown kid {shown(kid)} in {source}")
        return key

    def _decode(
        self,
        token: str,
        key: PyJWK,
        audience: str | Sequence[str],
        issuer: TrustedIssuer,
        unverified: Mapping[str, Any],
    ) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=list(ALLOWED_ALGORITHMS),
                audience=audience if isinstance(audience, str) else list(audience),
                issuer=issuer.iss,
                options={
                    "require": REQUIRED_CLAIMS,
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "verify_jti": True,
                    "verify_sub": True,
                    "strict_aud": False,
                    # times are checked in _check_times, against self._clock
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except InvalidSignatureError as exc:
            raise AuthenticationError("signature does not verify") from exc
        except InvalidAudienceError as exc:
            expected = [audience] if isinstance(audience, str) else list(audience)
            raise AuthenticationError(
                f"aud {shown(unverified.get('aud'))} does not name "
                f"{' or '.join(repr(a) for a in expected)}"
                f"{audience_hint(unverified.get('aud'), expected)}"
            ) from exc
        except MissingRequiredClaimError as exc:
            raise AuthenticationError(f"missing claim {exc.claim}") from exc
        except InvalidIssuerError as exc:
            raise AuthenticationError("iss does not match the key's issuer") from exc
        except InvalidJTIError as exc:
            raise AuthenticationError("jti is not a string") from exc
        except InvalidAlgorithmError as exc:
            raise AuthenticationError("algorithm not allowed for this key") from exc
        except InvalidKeyError as exc:
            raise AuthenticationError("key not acceptable (too short?)") from exc
        except DecodeError as exc:
            raise AuthenticationError("malformed token") from exc
        except (PyJWTError, ValueError, TypeError, RecursionError) as exc:
            raise AuthenticationError(f"token refused ({type(exc).__name__})") from exc

    def _check_times(self, payload: Mapping[str, Any]) -> tuple[float, float]:
        for claim in ("exp", "iat", "nbf"):
            if claim in payload and not _is_number(payload[claim]):
                raise AuthenticationError(f"{claim} is not a number")
        exp: float = payload["exp"]
        iat: float = payload["iat"]
        now = self._clock()
        if exp <= now - self._leeway:
            raise AuthenticationError(f"token expired {now - exp:.0f} s ago")
        if iat > now + self._leeway:
            raise AuthenticationError(f"iat {iat - now:.0f} s in the future")
        nbf = payload.get("nbf")
        if nbf is not None and nbf > now + self._leeway:
            raise AuthenticationError(f"nbf {nbf - now:.0f} s in the future")
        if exp <= iat:
            raise AuthenticationError("exp is not after iat")
        if exp - iat > self._max_lifetime:
            raise AuthenticationError(
                f"lifetime {exp - iat:.0f} s over the {self._max_lifetime:.0f} s allowed"
            )
        return exp, iat

    @staticmethod
    def _check_tenant(issuer: TrustedIssuer, tenant: object) -> str | None:
        if tenant is not None and not isinstance(tenant, str):
            raise AuthenticationError("tenant is not a string")
        if issuer.tenants is not None and tenant not in issuer.tenants:
            raise AuthenticationError(
                f"tenant {shown(tenant)} is not allowed for {shown(issuer.iss)}"
            )
        return tenant

    def _check_replay(self, iss: str, jti: str, exp: float) -> None:
        try:
            first = self._replay.first_use(iss, jti, expires_at=exp + self._leeway)
        except ReplayCacheFullError as exc:
            raise AuthenticationError(f"replay cache full ({exc}); token refused") from exc
        if not first:
            raise AuthenticationError(f"jti {shown(jti)} of {shown(iss)} already used")


def _unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload before verification: only to choose the issuer and key."""
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationError(f"token over {MAX_TOKEN_CHARS} characters")
    pieces = token.split(".")
    if len(pieces) != 3:
        raise AuthenticationError("malformed token (not three parts)")
    for name, piece in (("header", pieces[0]), ("payload", pieces[1])):
        if not json_depth_within(_decoded_part(piece, name), MAX_JSON_DEPTH):
            raise AuthenticationError(f"malformed token ({name} nested over {MAX_JSON_DEPTH})")
    try:
        parts = jwt.api_jws.PyJWS().decode_complete(token, options={"verify_signature": False})
    except (PyJWTError, ValueError, TypeError, RecursionError) as exc:
        raise AuthenticationError("malformed token") from exc
    header: object = parts["header"]
    try:
        payload: object = json.loads(parts["payload"])
    except (ValueError, RecursionError) as exc:
        raise AuthenticationError("malformed token (payload is not JSON)") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise AuthenticationError("malformed token (header or payload not an object)")
    return header, payload


def _checked_header(header: Mapping[str, Any]) -> tuple[str, str]:
    """The header's ``alg`` and ``kid`` if the header is one this service accepts."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise AuthenticationError(f"alg {shown(alg)} not allowed (only ES384, RS384)")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_ID_CHARS:
        raise AuthenticationError("kid header missing or not a short string")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise AuthenticationError(f"typ {shown(typ)} is not JWT")
    if "crit" in header or "b64" in header:
        raise AuthenticationError("crit/b64 header extensions are not supported")
    jku = header.get("jku")
    if jku is not None and not isinstance(jku, str):
        raise AuthenticationError("jku header is not a string")
    return alg, kid
