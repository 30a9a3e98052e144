"""The app as an EHR meets it: signed calls required once issuers are configured, and
missing prefetch fetched from a real FHIR server (sekmet-fhir, started on loopback)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.settings import Settings
from tests.conftest import load_example
from tests.fhir.fhir_server import FhirTestServer, sekmet_fhir_server  # noqa: F401
from tests.security.support import ec_key, public_jwk, sign

BASE = "https://cds.example.org"
ISS = "https://ehr.example.org"
SERVICE = "/cds-services/restless-order-select"


def _claims(audience: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISS,
        "aud": audience,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        **changes,
    }


@pytest.fixture
def signed_app_settings(tmp_path: Path, rules_dir: Path) -> Settings:
    jwks = tmp_path / "ehr-jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(ec_key(), "k1", alg="ES384")]}))
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": ISS, "jwks_file": str(jwks)}]))
    return Settings(rules_dir=rules_dir, public_base_url=BASE, trusted_issuers_file=issuers)


def _auth(audience: str, **changes: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(ec_key(), payload=_claims(audience, **changes))}"}


def test_calls_need_a_valid_token_once_issuers_are_configured(
    signed_app_settings: Settings,
) -> None:
    body = load_example("restless-back-amisulpride.json")
    with TestClient(create_app(signed_app_settings)) as client:
        assert client.get("/cds-services").status_code == 401
        assert client.get("/cds-services", headers=_auth(f"{BASE}/cds-services")).status_code == 200
        refused = client.post(SERVICE, json=body, headers=_auth(f"{BASE}/cds-services"))
        assert refused.status_code == 401  # a token for discovery is not one for the service
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["issue"][0]["diagnostics"] == "authentication required"
        headers = _auth(f"{BASE}{SERVICE}")
        accepted = client.post(SERVICE, json=body, headers=headers)
        assert accepted.status_code == 200
        assert accepted.json()["cards"][0]["indicator"] == "warning"
        assert client.post(SERVICE, json=body, headers=headers).status_code == 401  # replay


def test_cors_preflight_needs_no_token(signed_app_settings: Settings) -> None:
    with TestClient(create_app(signed_app_settings)) as client:
        response = client.options(
            SERVICE,
            headers={
                "Origin": "https://sandbox.cds-hooks.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
    assert response.status_code == 200
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_missing_prefetch_is_fetched_from_the_fhir_server(
    fhir_server: FhirTestServer, settings: Settings
) -> None:
    body = copy.deepcopy(fhir_server.example)
    del body["prefetch"]
    body["fhirServer"] = fhir_server.base_url
    body["fhirAuthorization"] = {
        "access_token": fhir_server.token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "restless-cds",
    }
    with TestClient(create_app(settings)) as client:
        cards = client.post(SERVICE, json=body).json()["cards"]
        assert [c["extension"]["restless-cds-rule"] for c in cards] == ["dose-review.draft-order"]
        body["fhirAuthorization"]["access_token"] = "wrong-token"
        refused = client.post(SERVICE, json=body)
    assert refused.status_code == 412
    assert "wrong-token" not in refused.text


def test_fallback_respects_the_server_allowlist(
    fhir_server: FhirTestServer, rules_dir: Path
) -> None:
    body = copy.deepcopy(fhir_server.example)
    del body["prefetch"]
    body["fhirServer"] = fhir_server.base_url
    settings = Settings(rules_dir=rules_dir, fhir_allowed_servers=["https://fhir.example.org/"])
    with TestClient(create_app(settings)) as client:
        response = client.post(SERVICE, json=body)
    assert response.status_code == 412


def test_a_bad_context_is_a_400_before_any_fetch(settings: Settings) -> None:
    """A request that will be refused must not make the service call a FHIR server."""
    body = load_example("restless-back-amisulpride.json")
    del body["prefetch"]
    del body["context"]["patientId"]
    body["fhirServer"] = "http://127.0.0.1:9/fhir"  # nothing listens: a fetch would 412
    with TestClient(create_app(settings)) as client:
        response = client.post(SERVICE, json=body)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["context.patientId"]
