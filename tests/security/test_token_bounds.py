"""Malformed bearer tokens through HTTP: every one is a 401, never a 500.

Regression: a JWT whose payload was deeply nested JSON raised ``RecursionError`` in the
verifier before authentication (500 and a reset connection).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.security.verifier import MAX_JSON_DEPTH, json_depth_within
from cds.settings import Settings
from tests.security.support import b64, b64json, ec_key, public_jwk, sign

BASE = "https://cds.example.org"
ISS = "https://ehr.example.org"
DISCOVERY = "/cds-services"
HEADER = b64json({"alg": "ES384", "typ": "JWT", "kid": "k1"})
SIGNATURE = b64(b"\x00" * 96)


@pytest.fixture
def client(tmp_path: Path, rules_dir: Path) -> Iterator[TestClient]:
    jwks = tmp_path / "ehr-jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(ec_key(), "k1", alg="ES384")]}))
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": ISS, "jwks_file": str(jwks)}]))
    settings = Settings(rules_dir=rules_dir, public_base_url=BASE, trusted_issuers_file=issuers)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _token(header: bytes | str, payload: bytes | str, signature: str = SIGNATURE) -> str:
    def part(value: bytes | str) -> str:
        return value if isinstance(value, str) else b64(value)

    return ".".join((part(header), part(payload), signature))


_ISS = json.dumps(ISS).encode()
MALFORMED = {
    "payload nested 5,000 deep": _token(
        HEADER, b'{"iss":' + _ISS + b',"x":' + _nested(5000) + b"}"
    ),
    "header nested 5,000 deep": _token(
        b'{"alg":"ES384","kid":"k1","x":' + _nested(5000) + b"}", b'{"iss":' + _ISS + b"}"
    ),
    "payload nested just past the bound": _token(
        HEADER, b'{"iss":' + _ISS + b',"x":' + _nested(MAX_JSON_DEPTH) + b"}"
    ),
    "payload an integer of 5,000 digits": _token(HEADER, b'{"iss":' + b"9" * 5000 + b"}"),
    "payload not base64url": _token(HEADER, "a"),
    "payload not JSON": _token(HEADER, b"not json"),
    "payload a JSON list": _token(HEADER, b"[" + _ISS + b"]"),
    "payload invalid UTF-8": _token(HEADER, b'{"iss":"\xff\xfe"}'),
    "header not JSON": _token(b"{{{", b'{"iss":' + _ISS + b"}"),
    "signature not base64url": _token(HEADER, b'{"iss":' + _ISS + b"}", "a"),
    "over 16 KB": _token(HEADER, b'{"iss":' + _ISS + b',"x":"' + b"y" * 20_000 + b'"}'),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_every_malformed_token_is_a_401(client: TestClient, name: str) -> None:
    """Regression: a deeply nested payload was a 500 (RecursionError) before this."""
    response = client.get(DISCOVERY, headers={"Authorization": f"Bearer {MALFORMED[name]}"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_signed_token_with_ordinary_nesting_is_still_accepted(client: TestClient) -> None:
    now = int(time.time())
    claims = {
        "iss": ISS,
        "aud": f"{BASE}{DISCOVERY}",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "fhirContext": [{"reference": "Encounter/1", "extension": [{"url": "x"}]}],
    }
    token = sign(ec_key(), payload=claims)
    response = client.get(DISCOVERY, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert json_depth_within(b'{"a": "[[[[[[", "b": [{"c": "\\"]]]"}]}', 3)
    assert not json_depth_within(b'{"a": [{"b": [1]}]}', 3)
    assert json_depth_within(b'{"a": [{"b": [1]}]}', 4)
