"""``bearer_token`` (the Authorization header), ``service_audience`` and the replay cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds.security import AuthenticationError, TrustedIssuer, bearer_token, service_audience
from cds.security.replay import ReplayCache, ReplayCacheFullError
from tests.security.conftest import MakeVerifier
from tests.security.support import ISS, NOW, Clock, ec_key, refused, sign, verify

TOKEN = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln"


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER   {TOKEN}  ", f"  Bearer {TOKEN}"],
)
def test_bearer_token(header: str) -> None:
    assert bearer_token(header) == TOKEN


def test_bearer_token_of_a_real_token() -> None:
    token = sign(ec_key())
    assert bearer_token(f"Bearer {token}") == token


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "no Authorization header"),
        ("", "no Authorization header"),
        ("Bearer", "empty bearer token"),
        ("Bearer   ", "empty bearer token"),
        (f"Basic {TOKEN}", "scheme 'Basic' is not Bearer"),
        (TOKEN, "(not a scheme)"),
        ("Bearer a.b", "not a compact JWT"),
        (f"Bearer {TOKEN} extra", "not a compact JWT"),
        ("Bearer " + "a" * 20_000, "over"),
    ],
)
def test_bearer_token_refusals(header: str | None, expected: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        bearer_token(header)
    assert expected in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_service_audience() -> None:
    assert (
        service_audience("https://cds.example.org/", "restless-order-select")
        == "https://cds.example.org/cds-services/restless-order-select"
    )


def test_replay_cache_forgets_after_expiry() -> None:
    clock = Clock()
    cache = ReplayCache(max_entries=10, clock=clock)
    assert cache.first_use("iss", "a", NOW + 10)
    assert not cache.first_use("iss", "a", NOW + 10)
    assert cache.first_use("other-iss", "a", NOW + 10)
    assert len(cache) == 2
    clock.advance(10)
    assert len(cache) == 0
    assert cache.first_use("iss", "a", NOW + 20)


def test_replay_cache_is_bounded() -> None:
    clock = Clock()
    cache = ReplayCache(max_entries=3, clock=clock)
    for jti in "abc":
        assert cache.first_use("iss", jti, NOW + 5)
    with pytest.raises(ReplayCacheFullError):
        cache.first_use("iss", "d", NOW + 5)
    assert not cache.first_use("iss", "a", NOW + 5)  # still a replay, full or not
    clock.advance(5)
    assert cache.first_use("iss", "d", NOW + 10)
    assert len(cache) == 1


def test_full_replay_cache_refuses(make_verifier: MakeVerifier, key_file: Path) -> None:
    verifier = make_verifier([TrustedIssuer(iss=ISS, jwks_file=key_file)], replay_cache_size=1)
    verify(verifier, sign(ec_key()))
    assert "replay cache full" in refused(verifier, sign(ec_key()))
