"""Key sets fetched from URLs: caching, key rotation, the refetch rate limit, ``jku``.

``FakeJwksEndpoints`` plugged in as an ``httpx.MockTransport`` fakes the remote JWKS
endpoints (nothing goes on the network) and counts requests per URL; the test clock
stands in for time passing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from cds.security import AuthenticationError, JwtVerifier, TrustedIssuer
from cds.security.jwks import MAX_KEYS, parse_jwks
from tests.security.conftest import MakeVerifier
from tests.security.support import (
    AUDIENCE,
    ISS,
    JWKS_URL,
    Clock,
    FakeJwksEndpoints,
    ec_key,
    jwks,
    public_jwk,
    refused,
    rsa_key,
    run,
    sign,
    verify,
)

JKU = "https://keys.ehr.example.org/cds/jwks.json"
URL_ISSUER = TrustedIssuer(iss=ISS, jwks_url=JWKS_URL)


@pytest.fixture
def served(endpoints: FakeJwksEndpoints) -> FakeJwksEndpoints:
    """The client's JWKS URL serves its EC key ``k1`` and RSA key ``r1``."""
    endpoints.sets[JWKS_URL] = jwks(public_jwk(ec_key(), "k1"), public_jwk(rsa_key(), "r1"))
    return endpoints


def test_jwks_url_fetched_once_and_cached(
    make_verifier: MakeVerifier, served: FakeJwksEndpoints
) -> None:
    """The key set comes from the (faked) remote JWKS endpoint, once for many calls."""
    verifier = make_verifier([URL_ISSUER])
    assert verify(verifier, sign(ec_key(), "ES384", "k1")).kid == "k1"
    assert verify(verifier, sign(rsa_key(), "RS384", "r1")).kid == "r1"
    assert served.count(JWKS_URL) == 1


def test_unknown_kid_refetched_once_then_refused(
    make_verifier: MakeVerifier, served: FakeJwksEndpoints, clock: Clock
) -> None:
    verifier = make_verifier([URL_ISSUER])
    verify(verifier, sign(ec_key(), kid="k1"))
    clock.advance(61)
    assert "unknown kid 'k9'" in refused(verifier, sign(ec_key("new"), kid="k9"))
    assert served.count(JWKS_URL) == 2  # the refetch found no k9 either
    assert "unknown kid 'k9'" in refused(verifier, sign(ec_key("new"), kid="k9"))
    assert served.count(JWKS_URL) == 2


def test_rotated_key_picked_up_by_the_refetch(
    make_verifier: MakeVerifier, served: FakeJwksEndpoints, clock: Clock
) -> None:
    verifier = make_verifier([URL_ISSUER])
    verify(verifier, sign(ec_key(), kid="k1"))
    served.sets[JWKS_URL] = jwks(public_jwk(ec_key("next"), "k2"))
    clock.advance(61)
    assert verify(verifier, sign(ec_key("next"), kid="k2")).kid == "k2"
    assert served.count(JWKS_URL) == 2
    # the retired key went with the old set
    assert "unknown kid 'k1'" in refused(verifier, sign(ec_key(), kid="k1"))


def test_refetch_rate_limit(
    make_verifier: MakeVerifier, served: FakeJwksEndpoints, clock: Clock
) -> None:
    verifier = make_verifier([URL_ISSUER])
    refused(verifier, sign(ec_key(), kid="k8"))
    refused(verifier, sign(ec_key(), kid="k9"))
    assert served.count(JWKS_URL) == 1  # two unknown kids in a row: one fetch
    clock.advance(59)
    refused(verifier, sign(ec_key(), kid="k7"))
    assert served.count(JWKS_URL) == 1
    clock.advance(2)
    refused(verifier, sign(ec_key(), kid="k6"))
    assert served.count(JWKS_URL) == 2


def test_concurrent_unknown_kids_share_one_fetch(
    make_verifier: MakeVerifier, endpoints: FakeJwksEndpoints
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        endpoints.requests.append(str(request.url))
        await asyncio.sleep(0.01)
        return httpx.Response(200, json=jwks(public_jwk(ec_key(), "k1")), request=request)

    verifier = make_verifier([URL_ISSUER], transport=httpx.MockTransport(slow))

    async def calls() -> list[Any]:
        tokens = [sign(ec_key(), kid="k1") for _ in range(5)]
        return await asyncio.gather(
            *(verifier.verify(t, "x") for t in tokens), return_exceptions=True
        )

    results = run(calls())
    assert len(endpoints.requests) == 1
    assert all(isinstance(r, AuthenticationError) and "does not name" in str(r) for r in results)


def test_key_set_refreshed_after_max_age(
    make_verifier: MakeVerifier, served: FakeJwksEndpoints, clock: Clock
) -> None:
    verifier = make_verifier([URL_ISSUER], jwks_max_age=600)
    verify(verifier, sign(ec_key(), kid="k1"))
    served.sets[JWKS_URL] = jwks(public_jwk(rsa_key(), "r1"))  # k1 revoked
    clock.advance(300)
    verify(verifier, sign(ec_key(), kid="k1"))  # still within max age
    clock.advance(301)
    assert "unknown kid 'k1'" in refused(verifier, sign(ec_key(), kid="k1"))
    assert served.count(JWKS_URL) == 2


def test_jku_not_on_the_allowlist(make_verifier: MakeVerifier, served: FakeJwksEndpoints) -> None:
    verifier = make_verifier([URL_ISSUER])
    token = sign(ec_key(), kid="k1", jku="https://evil.example.org/jwks.json")
    assert "jku 'https://evil.example.org/jwks.json' is not allowed" in refused(verifier, token)
    assert served.requests == []


def test_jku_on_the_allowlist_is_where_keys_come_from(
    make_verifier: MakeVerifier, served: FakeJwksEndpoints
) -> None:
    served.sets[JKU] = jwks(public_jwk(ec_key("jku"), "j1"))
    verifier = make_verifier([TrustedIssuer(iss=ISS, jwks_url=JWKS_URL, allowed_jku=(JKU,))])
    assert verify(verifier, sign(ec_key("jku"), kid="j1", jku=JKU)).kid == "j1"
    assert served.requests == [JKU]
    # a key of the other set is not found through this jku
    assert "unknown kid 'k1'" in refused(verifier, sign(ec_key(), kid="k1", jku=JKU))


def test_jku_only_issuer_needs_a_jku(
    make_verifier: MakeVerifier, served: FakeJwksEndpoints
) -> None:
    served.sets[JKU] = jwks(public_jwk(ec_key(), "k1"))
    verifier = make_verifier([TrustedIssuer(iss=ISS, allowed_jku=(JKU,))])
    assert verify(verifier, sign(ec_key(), kid="k1", jku=JKU)).kid == "k1"
    assert "no jku header" in refused(verifier, sign(ec_key(), kid="k1"))


@pytest.mark.parametrize(
    ("served_value", "expected"),
    [
        (500, "HTTP 500"),
        (302, "HTTP 302"),
        (404, "HTTP 404"),
        ({"keys": "none"}, "not a JWK Set"),
        ({"keys": [{"kid": str(i)} for i in range(MAX_KEYS + 1)]}, "more than"),
    ],
)
def test_fetch_failures_refuse(
    make_verifier: MakeVerifier,
    endpoints: FakeJwksEndpoints,
    served_value: dict[str, Any] | int,
    expected: str,
) -> None:
    endpoints.sets[JWKS_URL] = served_value
    verifier = make_verifier([URL_ISSUER])
    assert expected in refused(verifier, sign(ec_key(), kid="k1"))


def test_unreachable_then_rate_limited_then_retried(
    make_verifier: MakeVerifier, endpoints: FakeJwksEndpoints, clock: Clock
) -> None:
    verifier = make_verifier([URL_ISSUER])
    assert "ConnectError" in refused(verifier, sign(ec_key(), kid="k1"))
    assert "unavailable" in refused(verifier, sign(ec_key(), kid="k1"))
    assert endpoints.count(JWKS_URL) == 1
    endpoints.sets[JWKS_URL] = jwks(public_jwk(ec_key(), "k1"))
    clock.advance(61)
    assert verify(verifier, sign(ec_key(), kid="k1")).kid == "k1"


def test_not_json_and_too_large(make_verifier: MakeVerifier) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/big":
            return httpx.Response(200, content=b" " * 300_000)
        return httpx.Response(200, content=b"<html>")

    transport = httpx.MockTransport(handler)
    for path, expected in [("/big", "bytes"), ("/html", "Expecting value")]:
        issuer = TrustedIssuer(iss=ISS, jwks_url=f"https://ehr.example.org{path}")
        verifier = make_verifier([issuer], transport=transport)
        assert expected in refused(verifier, sign(ec_key(), kid="k1"))


def test_fetch_timeout(make_verifier: MakeVerifier) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=jwks())

    verifier = make_verifier([URL_ISSUER], transport=httpx.MockTransport(hang), jwks_timeout=0.05)
    assert "timed out" in refused(verifier, sign(ec_key(), kid="k1"))


def test_parse_jwks_keeps_only_usable_keys(caplog: pytest.LogCaptureFixture) -> None:
    private = {**public_jwk(ec_key(), "private"), "d": "AAAA"}
    keys = parse_jwks(
        jwks(
            public_jwk(ec_key(), "ok-ec"),
            public_jwk(rsa_key(), "ok-rsa", alg="RS384"),
            private,
            public_jwk(ec_key(), "enc", use="enc"),
            public_jwk(ec_key(), "sign-only", key_ops=["sign"]),
            public_jwk(ec_key("p256", "P-256"), "p256"),
            public_jwk(rsa_key("small", 1024), "small"),
            public_jwk(rsa_key(), "rs256", alg="RS256"),
            public_jwk(rsa_key(), "claims-ec", alg="ES384"),
            public_jwk(ec_key(), "dup"),
            public_jwk(rsa_key(), "dup"),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "EC", "crv": "P-384", "kid": "broken", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-384"},
            "not an object",
        ),
        "test",
    )
    assert {kid: key.algorithm_name for kid, key in keys.items()} == {
        "ok-ec": "ES384",
        "ok-rsa": "RS384",
    }
    assert "private key material" in caplog.text
    assert "appears more than once" in caplog.text


def test_parse_jwks_rejects_non_sets() -> None:
    not_sets: list[object] = [[], {"keys": {}}, "x", None]
    for data in not_sets:
        with pytest.raises(ValueError, match="not a JWK Set"):
            parse_jwks(data, "test")


def test_owned_client_is_closed(make_verifier: MakeVerifier, served: FakeJwksEndpoints) -> None:
    verifier = make_verifier([URL_ISSUER])
    run(verifier.aclose())
    with pytest.raises(AuthenticationError):
        verify(verifier, sign(ec_key(), kid="k1"))


def test_injected_client_is_used_and_left_open(served: FakeJwksEndpoints, clock: Clock) -> None:
    async def scenario() -> tuple[str, bool]:
        async with httpx.AsyncClient(transport=served.transport()) as client:
            verifier = JwtVerifier([URL_ISSUER], http_client=client, clock=clock)
            claims = await verifier.verify(sign(ec_key(), kid="k1"), AUDIENCE)
            await verifier.aclose()
            return claims.kid, client.is_closed

    assert run(scenario()) == ("k1", False)
    assert served.count(JWKS_URL) == 1
