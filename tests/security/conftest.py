"""Fixtures: a clock, fake JWKS endpoints, and verifiers built on them (closed after)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cds.security import JwtVerifier, TrustedIssuer
from tests.security.support import ISS, Clock, FakeJwksEndpoints, ec_key, public_jwk, rsa_key, run

MakeVerifier = Callable[..., JwtVerifier]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def endpoints() -> FakeJwksEndpoints:
    return FakeJwksEndpoints()


@pytest.fixture
def make_verifier(clock: Clock, endpoints: FakeJwksEndpoints) -> Iterator[MakeVerifier]:
    """Verifiers on the test clock, fetching only from ``endpoints``."""
    made: list[JwtVerifier] = []

    def make(issuers: list[TrustedIssuer], **options: Any) -> JwtVerifier:
        options.setdefault("clock", clock)
        options.setdefault("transport", endpoints.transport())
        verifier = JwtVerifier(issuers, **options)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        run(verifier.aclose())


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A JWKS file with the EC P-384 key ``k1`` and the RSA key ``r1``."""
    path = tmp_path / "client-jwks.json"
    keys = [public_jwk(ec_key(), "k1", alg="ES384"), public_jwk(rsa_key(), "r1")]
    path.write_text(json.dumps({"keys": keys}), encoding="utf-8")
    return path


@pytest.fixture
def file_verifier(make_verifier: MakeVerifier, key_file: Path) -> JwtVerifier:
    """Trusts ``ISS`` with the keys of ``key_file`` (no network at all)."""
    return make_verifier([TrustedIssuer(iss=ISS, jwks_file=key_file)])
