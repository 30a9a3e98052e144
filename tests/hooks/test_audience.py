"""A JWT whose ``aud`` misses only by localhost vs 127.0.0.1 or a trailing slash: the log
says so; PUBLIC_BASE_URL may list several accepted URLs (a local demo's two spellings)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.security.verifier import audience_hint
from cds.settings import Settings
from tests.security.support import ec_key, public_jwk, sign

ISS = "https://ehr.example.org"
PATH = "/cds-services"


def _settings(tmp_path: Path, rules_dir: Path, public_base_url: str) -> Settings:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(ec_key(), "k1", alg="ES384")]}))
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": ISS, "jwks_file": str(jwks)}]))
    return Settings(
        rules_dir=rules_dir, public_base_url=public_base_url, trusted_issuers_file=issuers
    )


def _auth(audience: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISS, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return {"Authorization": f"Bearer {sign(ec_key(), payload=claims)}"}


def test_the_hint_names_a_trailing_slash_or_the_loopback_spelling() -> None:
    want = ["http://127.0.0.1:8000/cds-services"]
    assert "trailing slash" in audience_hint("http://127.0.0.1:8000/cds-services/", want)
    assert "localhost vs 127.0.0.1" in audience_hint("http://localhost:8000/cds-services", want)
    assert audience_hint("https://other.example.org/cds-services", want) == ""
    assert audience_hint(["x", "http://localhost:8000/cds-services"], want) != ""


def test_a_localhost_token_is_refused_with_the_reason_logged(
    tmp_path: Path, rules_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, rules_dir, "http://127.0.0.1:8000")
    with TestClient(create_app(settings)) as client, caplog.at_level(logging.WARNING):
        response = client.get(PATH, headers=_auth(f"http://localhost:8000{PATH}"))
    assert response.status_code == 401
    assert "differ only by localhost vs 127.0.0.1" in caplog.text


def test_several_public_base_urls_are_each_accepted(tmp_path: Path, rules_dir: Path) -> None:
    settings = _settings(tmp_path, rules_dir, "http://127.0.0.1:8000, http://localhost:8000/")
    assert settings.public_base_urls == ("http://127.0.0.1:8000", "http://localhost:8000")
    with TestClient(create_app(settings)) as client:
        for base in settings.public_base_urls:
            assert client.get(PATH, headers=_auth(f"{base}{PATH}")).status_code == 200
        assert client.get(PATH, headers=_auth(f"http://[::1]:8000{PATH}")).status_code == 401
