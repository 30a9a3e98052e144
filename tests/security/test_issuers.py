"""Trusted-issuer configuration and the CDS Hooks Sandbox issuer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds.security import (
    SANDBOX_ISS,
    SANDBOX_JKU,
    SANDBOX_JWKS_FILE,
    IssuerConfigError,
    TrustedIssuer,
    load_trusted_issuers,
    parse_trusted_issuers,
    sandbox_issuer,
)
from cds.security.jwks import load_jwks_file
from tests.security.conftest import MakeVerifier
from tests.security.support import (
    FakeJwksEndpoints,
    claims,
    ec_key,
    jwks,
    public_jwk,
    refused,
    sign,
)

SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SHARED_COPY = Path(__file__).resolve().parents[3] / "shared/conformance/cds-hooks-sandbox-jwks.json"


def problems(exc: pytest.ExceptionInfo[IssuerConfigError]) -> dict[str, str]:
    """Messages by location (several at one location joined with " | ")."""
    found: dict[str, str] = {}
    for problem in exc.value.problems:
        found[problem.where] = " | ".join(filter(None, [found.get(problem.where), problem.message]))
    return found


def test_load_json(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/ehr.json").write_text(json.dumps(jwks(public_jwk(ec_key(), "k1"))))
    path = tmp_path / "issuers.json"
    entries = [
        {"iss": "https://a.example.org", "jwks_url": "https://a.example.org/jwks"},
        {
            "iss": "https://b.example.org",
            "jwks_file": "keys/ehr.json",
            "allowed_jku": ["https://b.example.org/jwks"],
            "tenants": ["t1", "t2"],
        },
        {"iss": "https://c.example.org", "allowed_jku": ["http://localhost:8080/jwks"]},
    ]
    path.write_text(json.dumps(entries))
    a, b, c = load_trusted_issuers(path)
    assert a == TrustedIssuer(iss="https://a.example.org", jwks_url="https://a.example.org/jwks")
    assert b.jwks_file == tmp_path / "keys/ehr.json"
    assert b.allowed_jku == ("https://b.example.org/jwks",)
    assert b.tenants == frozenset({"t1", "t2"})
    assert (c.jwks_url, c.jwks_file, c.tenants) == (None, None, None)


def test_load_yaml(tmp_path: Path) -> None:
    path = tmp_path / "issuers.yaml"
    path.write_text("- iss: https://a.example.org\n  jwks_url: https://a.example.org/jwks\n")
    assert [i.iss for i in load_trusted_issuers(path)] == ["https://a.example.org"]


def test_every_problem_named_by_entry_and_field(tmp_path: Path) -> None:
    data: list[Any] = [
        {"iss": "https://a.example.org", "jwks_uri": "https://a.example.org/jwks"},
        {"jwks_url": "https://b.example.org/jwks"},
        {"iss": "https://c.example.org", "jwks_url": "http://c.example.org/jwks"},
        {"iss": "https://d.example.org", "jwks_url": "https://d", "jwks_file": "missing.json"},
        {"iss": "https://e.example.org", "jwks_url": "https://e/j", "allowed_jku": "https://e"},
        {"iss": "https://f.example.org", "jwks_url": "https://f/j", "tenants": []},
        {"iss": "https://g.example.org", "jwks_url": "https://g/j"},
        {"iss": "https://g.example.org", "jwks_url": "https://g/j"},
        "https://h.example.org",
        {"iss": "https://i.example.org", "jwks_url": "https://i/j", "allowed_jku": ["ftp://i"]},
    ]
    with pytest.raises(IssuerConfigError) as caught:
        parse_trusted_issuers(data, base_dir=tmp_path, source="issuers.json")
    found = problems(caught)
    assert "unknown field" in found["issuers.json[0].jwks_uri"]
    assert "no key source" in found["issuers.json[0].jwks_url"]
    assert "required" in found["issuers.json[1].iss"]
    assert "https" in found["issuers.json[2].jwks_url"]
    assert "no such file" in found["issuers.json[3].jwks_file"]
    assert "not both" in found["issuers.json[3].jwks_file"]
    assert "list of strings" in found["issuers.json[4].allowed_jku"]
    assert "empty list" in found["issuers.json[5].tenants"]
    assert "duplicate" in found["issuers.json[7].iss"]
    assert "object" in found["issuers.json[8]"]
    assert "https" in found["issuers.json[9].allowed_jku[0]"]
    assert len(found) == 10


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(IssuerConfigError, match="cannot read"):
        load_trusted_issuers(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"iss": ')
    with pytest.raises(IssuerConfigError) as caught:
        load_trusted_issuers(bad)
    assert list(problems(caught)) == [f"{bad}:1:10"]
    not_list = tmp_path / "obj.json"
    not_list.write_text("{}")
    with pytest.raises(IssuerConfigError, match="must be a list"):
        load_trusted_issuers(not_list)


def test_trusted_issuer_validates_direct_construction() -> None:
    with pytest.raises(IssuerConfigError) as caught:
        TrustedIssuer(iss=" x", jwks_url="https://a/j", jwks_file=Path("k.json"))
    assert set(problems(caught)) == {"iss", "jwks_file"}


def test_unusable_key_file_stops_start_up(make_verifier: MakeVerifier, tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text(json.dumps(jwks(public_jwk(ec_key("p256", "P-256"), "p"))))
    with pytest.raises(IssuerConfigError, match="no usable ES384 or RS384 key"):
        make_verifier([TrustedIssuer(iss="https://a.example.org", jwks_file=path)])
    path.write_text("nope")
    with pytest.raises(IssuerConfigError, match="unusable JWKS file"):
        make_verifier([TrustedIssuer(iss="https://a.example.org", jwks_file=path)])


def test_sandbox_key_file_is_the_published_one() -> None:
    if SHARED_COPY.is_file():
        assert SANDBOX_JWKS_FILE.read_bytes() == SHARED_COPY.read_bytes()
    keys = load_jwks_file(SANDBOX_JWKS_FILE)
    assert {kid: key.algorithm_name for kid, key in keys.items()} == {SANDBOX_KID: "ES384"}


def test_sandbox_issuer() -> None:
    issuer = sandbox_issuer()
    assert issuer.iss == SANDBOX_ISS == "https://sandbox.cds-hooks.org"
    assert issuer.allowed_jku == (SANDBOX_JKU,)
    assert SANDBOX_JKU == "https://sandbox.cds-hooks.org/.well-known/jwks.json"
    assert (issuer.jwks_url, issuer.tenants) == (None, None)


def test_sandbox_token_signed_with_another_key_is_refused(
    make_verifier: MakeVerifier, endpoints: FakeJwksEndpoints
) -> None:
    """A token shaped like the Sandbox's (same kid, iss, jku) but signed with our key.

    The attacker's key set is even served at the Sandbox's jku URL: the verifier must use
    the shipped file and never fetch.
    """
    endpoints.sets[SANDBOX_JKU] = jwks(public_jwk(ec_key("attacker"), SANDBOX_KID))
    verifier = make_verifier([sandbox_issuer()])
    payload = claims(iss=SANDBOX_ISS)
    for header in [{"jku": SANDBOX_JKU}, {}]:
        token = sign(ec_key("attacker"), "ES384", SANDBOX_KID, payload, **header)
        assert "signature does not verify" in refused(verifier, token)
    other_kid = sign(ec_key("attacker"), "ES384", "attacker-kid", payload, jku=SANDBOX_JKU)
    assert "unknown kid" in refused(verifier, other_kid)
    elsewhere = sign(ec_key("attacker"), "ES384", SANDBOX_KID, payload, jku="https://x.org/j")
    assert "is not allowed" in refused(verifier, elsewhere)
    assert endpoints.requests == []


def test_sandbox_issuer_needs_no_network(make_verifier: MakeVerifier) -> None:
    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"fetched {request.url}")

    verifier = make_verifier([sandbox_issuer()], transport=httpx.MockTransport(no_network))
    assert verifier.issuers == (SANDBOX_ISS,)


def test_one_issuer_configured_twice(make_verifier: MakeVerifier) -> None:
    with pytest.raises(IssuerConfigError, match="configured twice"):
        make_verifier([sandbox_issuer(), sandbox_issuer()])
