"""Keys, tokens, a fake clock and a fake JWKS endpoint for the authentication tests.

Keys are generated once per test session with ``cryptography`` (RSA generation is the
slow part); tokens are signed with PyJWT, except the ones no honest library would make
(``alg: none``, HS256 keyed with a public key), which are assembled by hand.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import itertools
import json
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds.security import AuthenticationError, JwtVerifier

T = TypeVar("T")

NOW = 1_800_000_000.0
AUDIENCE = "https://cds.example.org/cds-services/restless-order-select"
ISS = "https://ehr.example.org"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@functools.cache
def ec_key(name: str = "ec", curve: str = "P-384") -> ec.EllipticCurvePrivateKey:
    curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
    return ec.generate_private_key(curves[curve])


@functools.cache
def rsa_key(name: str = "rsa", bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_jwk(key: PrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    """The public JWK of ``key`` with ``kid`` (and ``extra`` members)."""
    public = key.public_key()
    jwk: dict[str, Any]
    if isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", **extra}


def jwks(*keys: object) -> dict[str, Any]:
    return {"keys": list(keys)}


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims a Sandbox-like client sends: 5 minutes to live, a fresh jti."""
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": AUDIENCE,
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "jti": f"jti-{next(_counter)}",
    }
    base.update(overrides)
    return base


def without(payload: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in names}


_counter = itertools.count(1)


def sign(
    key: PrivateKey,
    alg: str = "ES384",
    kid: str = "k1",
    payload: dict[str, Any] | None = None,
    **header: Any,
) -> str:
    return jwt.encode(
        payload if payload is not None else claims(),
        key,
        algorithm=alg,
        headers={"kid": kid, "typ": "JWT", **header},
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: object) -> str:
    return b64(json.dumps(value).encode())


def unsigned(payload: dict[str, Any], kid: str = "k1") -> str:
    """An ``alg: none`` token, made by hand (PyJWT refuses to decode these by design)."""
    return f"{b64json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64json(payload)}."


def hs256_with_public_pem(key: PrivateKey, payload: dict[str, Any], kid: str = "k1") -> str:
    """HS256 keyed with the public key's PEM: the classic key-confusion forgery."""
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64json(payload)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def with_payload(token: str, **changes: Any) -> str:
    """``token`` with claims changed after signing (the signature left as it was)."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64json({**decoded, **changes})}.{signature}"


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeJwksEndpoints:
    """Fakes the remote JWKS endpoints: serves ``sets[url]``, counts every request.

    Plugged in as an ``httpx.MockTransport``; nothing leaves the process. A URL set to an
    ``int`` answers with that status; an unknown URL raises ``httpx.ConnectError``.
    """

    sets: dict[str, dict[str, Any] | int] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        if url not in self.sets:
            raise httpx.ConnectError("no route", request=request)
        served = self.sets[url]
        if isinstance(served, int):
            return httpx.Response(served, request=request)
        return httpx.Response(200, json=served, request=request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def count(self, url: str) -> int:
        return self.requests.count(url)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def verify(verifier: JwtVerifier, token: str, audience: str = AUDIENCE) -> Any:
    return run(verifier.verify(token, audience))


def refused(verifier: JwtVerifier, token: str, audience: str = AUDIENCE) -> str:
    """The log message of the refusal, checked never to contain the token (or its parts)."""
    with pytest.raises(AuthenticationError) as caught:
        verify(verifier, token, audience)
    message = str(caught.value)
    if token:
        assert token not in message
    # the payload and signature make it a credential; the header is common to many tokens
    for part in token.split(".")[1:3]:
        if len(part) >= 8:
            assert part not in message
    return message
