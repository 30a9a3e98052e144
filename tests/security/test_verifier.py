"""The token checks of ``JwtVerifier.verify``: signature, algorithm, claims, replay.

The issuer here has a key file (EC P-384 ``k1``, RSA ``r1``), so nothing is fetched; the
clock is fixed at ``NOW``. Every refusal goes through ``refused``, which also checks the
log message never contains the token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from cds.security import AuthenticationError, JwtVerifier, TrustedIssuer, bearer_token
from tests.security.conftest import MakeVerifier
from tests.security.support import (
    AUDIENCE,
    ISS,
    NOW,
    Clock,
    PrivateKey,
    b64json,
    claims,
    ec_key,
    hs256_with_public_pem,
    refused,
    rsa_key,
    sign,
    unsigned,
    verify,
    with_payload,
    without,
)


def test_good_es384_token(file_verifier: JwtVerifier) -> None:
    payload = claims(jti="a-1", tenant="clinic-7", sub="sandbox")
    got = verify(file_verifier, sign(ec_key(), "ES384", "k1", payload))
    assert (got.iss, got.jti, got.kid, got.alg) == (ISS, "a-1", "k1", "ES384")
    assert (got.exp, got.iat, got.tenant, got.sub) == (NOW + 300, NOW, "clinic-7", "sandbox")
    assert got.payload["aud"] == AUDIENCE


def test_good_rs384_token(file_verifier: JwtVerifier) -> None:
    got = verify(file_verifier, sign(rsa_key(), "RS384", "r1"))
    assert (got.alg, got.kid, got.tenant) == ("RS384", "r1", None)


def test_aud_list_containing_ours(file_verifier: JwtVerifier) -> None:
    payload = claims(aud=["https://other.example.org/cds-services/x", AUDIENCE])
    assert verify(file_verifier, sign(ec_key(), payload=payload)).iss == ISS


@pytest.mark.parametrize(
    "aud",
    [
        "https://cds.example.org/cds-services/restless-order-sign",
        AUDIENCE + "/",
        AUDIENCE.upper(),
        ["https://other.example.org"],
    ],
)
def test_wrong_aud(file_verifier: JwtVerifier, aud: object) -> None:
    message = refused(file_verifier, sign(ec_key(), payload=claims(aud=aud)))
    assert "does not name" in message


def test_missing_aud(file_verifier: JwtVerifier) -> None:
    token = sign(ec_key(), payload=without(claims(), "aud"))
    assert "missing claim aud" in refused(file_verifier, token)


def test_expired(file_verifier: JwtVerifier) -> None:
    payload = claims(iat=int(NOW) - 400, exp=int(NOW) - 31)
    assert "expired" in refused(file_verifier, sign(ec_key(), payload=payload))


def test_expired_within_leeway_is_accepted(file_verifier: JwtVerifier) -> None:
    payload = claims(iat=int(NOW) - 300, exp=int(NOW) - 29)
    assert verify(file_verifier, sign(ec_key(), payload=payload)).iss == ISS


def test_iat_in_the_future(file_verifier: JwtVerifier) -> None:
    payload = claims(iat=int(NOW) + 31, exp=int(NOW) + 300)
    assert "iat" in refused(file_verifier, sign(ec_key(), payload=payload))


def test_nbf_in_the_future(file_verifier: JwtVerifier) -> None:
    payload = claims(nbf=int(NOW) + 60)
    assert "nbf" in refused(file_verifier, sign(ec_key(), payload=payload))


def test_nbf_in_the_past_is_accepted(file_verifier: JwtVerifier) -> None:
    assert verify(file_verifier, sign(ec_key(), payload=claims(nbf=int(NOW) - 5))).iss == ISS


def test_lifetime_over_the_maximum(file_verifier: JwtVerifier) -> None:
    payload = claims(exp=int(NOW) + 3600)
    assert "lifetime" in refused(file_verifier, sign(ec_key(), payload=payload))


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "iss"])
def test_required_claims(file_verifier: JwtVerifier, claim: str) -> None:
    token = sign(ec_key(), payload=without(claims(), claim))
    assert f"claim {claim}" in refused(file_verifier, token)


@pytest.mark.parametrize(
    ("claim", "value"), [("exp", str(int(NOW) + 300)), ("iat", True), ("nbf", "0")]
)
def test_time_claims_must_be_numbers(file_verifier: JwtVerifier, claim: str, value: object) -> None:
    message = refused(file_verifier, sign(ec_key(), payload=claims(**{claim: value})))
    assert "not a number" in message or "integer" in message or "malformed" in message


def test_wrong_iss(file_verifier: JwtVerifier) -> None:
    token = sign(ec_key(), payload=claims(iss="https://evil.example.org"))
    assert "not trusted" in refused(file_verifier, token)


def test_replayed_jti(file_verifier: JwtVerifier) -> None:
    token = sign(ec_key(), payload=claims(jti="once"))
    verify(file_verifier, token)
    assert "already used" in refused(file_verifier, token)
    # a fresh token reusing the jti is a replay too
    again = sign(ec_key(), payload=claims(jti="once", iat=int(NOW) + 1))
    assert "already used" in refused(file_verifier, again)


def test_jti_forgotten_after_expiry_but_token_expired_by_then(
    file_verifier: JwtVerifier, clock: Clock
) -> None:
    token = sign(ec_key(), payload=claims(jti="late"))
    verify(file_verifier, token)
    clock.advance(300 + 31)
    assert "expired" in refused(file_verifier, token)


def test_same_jti_from_two_issuers_is_no_replay(
    make_verifier: MakeVerifier, key_file: Path
) -> None:
    other = "https://other-ehr.example.org"
    verifier = make_verifier(
        [TrustedIssuer(iss=ISS, jwks_file=key_file), TrustedIssuer(iss=other, jwks_file=key_file)]
    )
    verify(verifier, sign(ec_key(), payload=claims(jti="shared")))
    assert verify(verifier, sign(ec_key(), payload=claims(jti="shared", iss=other))).iss == other


def test_alg_none(file_verifier: JwtVerifier) -> None:
    assert "'none' not allowed" in refused(file_verifier, unsigned(claims()))


@pytest.mark.parametrize(("key", "kid"), [(ec_key, "k1"), (rsa_key, "r1")])
def test_hs256_signed_with_the_public_key(
    file_verifier: JwtVerifier, key: Callable[[], PrivateKey], kid: str
) -> None:
    token = hs256_with_public_pem(key(), claims(), kid)
    assert "'HS256' not allowed" in refused(file_verifier, token)


def test_es256_not_allowed(file_verifier: JwtVerifier) -> None:
    token = sign(ec_key("ec256", "P-256"), "ES256", "k1")
    assert "'ES256' not allowed" in refused(file_verifier, token)


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES512", "HS384", "EdDSA"])
def test_other_algorithms_not_allowed(file_verifier: JwtVerifier, alg: str) -> None:
    header = b64json({"alg": alg, "typ": "JWT", "kid": "k1"})
    token = f"{header}.{b64json(claims())}.c2lnbmF0dXJl"
    assert f"{alg!r} not allowed" in refused(file_verifier, token)


@pytest.mark.parametrize(
    ("key", "alg", "kid"),
    [(rsa_key, "RS384", "k1"), (ec_key, "ES384", "r1")],
)
def test_key_type_must_match_alg(
    file_verifier: JwtVerifier, key: Callable[[], PrivateKey], alg: str, kid: str
) -> None:
    assert "does not match key" in refused(file_verifier, sign(key(), alg, kid))


def test_tampered_payload(file_verifier: JwtVerifier) -> None:
    token = sign(ec_key(), payload=claims(tenant="clinic-7"))
    forged = with_payload(token, tenant="clinic-8")
    assert "signature does not verify" in refused(file_verifier, forged)
    longer = with_payload(token, exp=int(NOW) + 600)
    assert "signature does not verify" in refused(file_verifier, longer)


def test_signed_by_another_key_with_a_known_kid(file_verifier: JwtVerifier) -> None:
    token = sign(ec_key("intruder"), "ES384", "k1")
    assert "signature does not verify" in refused(file_verifier, token)


def test_unknown_kid_in_a_key_file(file_verifier: JwtVerifier) -> None:
    assert "unknown kid 'k9'" in refused(file_verifier, sign(ec_key(), kid="k9"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"kid": None}, "kid header missing"),
        ({"kid": ""}, "kid header missing"),
        ({"typ": "at+jwt"}, "typ 'at+jwt' is not JWT"),
        ({"crit": ["exp"]}, "malformed"),
        ({"jku": 7}, "jku header is not a string"),
    ],
)
def test_header_checks(file_verifier: JwtVerifier, header: dict[str, Any], expected: str) -> None:
    headers = {k: v for k, v in {"kid": "k1", **header}.items() if v is not None}
    token = jwt.encode(claims(), ec_key(), algorithm="ES384", headers=headers)
    assert expected in refused(file_verifier, token)


def test_lowercase_typ_and_no_typ_accepted(file_verifier: JwtVerifier) -> None:
    assert verify(file_verifier, sign(ec_key(), typ="jwt")).alg == "ES384"
    token = jwt.encode(claims(), ec_key(), algorithm="ES384", headers={"kid": "k1", "typ": None})
    assert verify(file_verifier, token).alg == "ES384"


@pytest.mark.parametrize("token", ["", "a.b", "not a token", "a.b.c.d.e", "x" * 20_000])
def test_garbage(file_verifier: JwtVerifier, token: str) -> None:
    refused(file_verifier, token)


def test_tenant_allowlist(make_verifier: MakeVerifier, key_file: Path) -> None:
    issuer = TrustedIssuer(iss=ISS, jwks_file=key_file, tenants=frozenset({"clinic-7"}))
    verifier = make_verifier([issuer])
    assert verify(verifier, sign(ec_key(), payload=claims(tenant="clinic-7"))).tenant == "clinic-7"
    assert "'clinic-8' is not allowed" in refused(
        verifier, sign(ec_key(), payload=claims(tenant="clinic-8"))
    )
    assert "tenant None is not allowed" in refused(verifier, sign(ec_key()))
    assert "not a string" in refused(verifier, sign(ec_key(), payload=claims(tenant=["clinic-7"])))


def test_any_tenant_without_an_allowlist(file_verifier: JwtVerifier) -> None:
    assert verify(file_verifier, sign(ec_key(), payload=claims(tenant="x"))).tenant == "x"


def test_refusal_does_not_consume_the_jti(file_verifier: JwtVerifier) -> None:
    payload = claims(jti="kept")
    refused(file_verifier, sign(ec_key(), payload=payload), audience="https://elsewhere")
    assert verify(file_verifier, sign(ec_key(), payload=payload)).jti == "kept"


def test_errors_never_contain_the_token(file_verifier: JwtVerifier) -> None:
    """Claims and headers that echo another token: messages show at most a short excerpt.

    (Every refusal in these tests also goes through ``refused``, which checks the message
    against the refused token itself.)
    """
    token = sign(ec_key())
    signature = token.rsplit(".", 1)[1]
    baits = [
        sign(ec_key(), payload=claims(iss=token)),
        sign(ec_key(), payload=claims(aud=token)),
        sign(ec_key(), payload=claims(jti=token)),
        sign(ec_key(), kid=token[:250]),
        sign(ec_key(), typ=token),
        sign(ec_key(), jku=token),
    ]
    for bait in baits:
        message = refused(file_verifier, bait)
        assert token not in message
        assert signature not in message
    for header in [f"Token {token}", token, f"{token} Bearer"]:
        with pytest.raises(AuthenticationError) as caught:
            bearer_token(header)
        assert signature not in str(caught.value)


def test_one_exception_type(file_verifier: JwtVerifier) -> None:
    assert issubclass(AuthenticationError, Exception)
    with pytest.raises(AuthenticationError):
        verify(file_verifier, "....")
