"""Shutdown: pending card writes are settled within the graceful timeout, and the store
and the JWKS client are closed even when settling fails."""

from __future__ import annotations

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
from tests.security.support import ISS, ec_key, public_jwk, sign

SERVICE = "/cds-services/restless-order-select"
BASE = "https://cds.example.org"
KEY = ec_key()


@pytest.fixture
def settings(tmp_path: Path, rules_dir: Path) -> Settings:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(KEY, "k1", alg="ES384")]}))
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": ISS, "jwks_file": str(jwks)}]))
    return Settings(
        rules_dir=rules_dir,
        public_base_url=BASE,
        trusted_issuers_file=issuers,
        database_path=tmp_path / "fb.db",
        graceful_shutdown_seconds=1,
    )


def _auth() -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": ISS, "aud": BASE + SERVICE, "iat": now, "exp": now + 300}
    return {"Authorization": f"Bearer {sign(KEY, payload={**claims, 'jti': str(uuid.uuid4())})}"}


def test_store_and_jwks_client_close_even_when_a_card_write_fails(settings: Settings) -> None:
    closed: list[str] = []
    app = create_app(settings)
    with TestClient(app) as client:
        store = app.state.card_ledger.store
        verifier = app.state.verifier

        def failing_write(records: Any) -> None:
            raise RuntimeError("disk on fire")  # not a database error: settling fails

        real_close, real_aclose = store.close, verifier.aclose

        def close() -> None:
            closed.append("store")
            real_close()

        async def aclose() -> None:
            closed.append("jwks")
            await real_aclose()

        store.record_cards = failing_write
        store.close = close
        verifier.aclose = aclose
        body = load_example("restless-back-amisulpride.json")
        assert client.post(SERVICE, json=body, headers=_auth()).json()["cards"]
    assert closed == ["store", "jwks"]
    assert app.state.shutting_down


def test_pending_card_writes_are_settled_before_the_store_closes(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        store = app.state.card_ledger.store
        real_write = store.record_cards

        def slow_write(records: Any) -> None:
            time.sleep(0.3)
            real_write(records)

        store.record_cards = slow_write
        body = load_example("restless-back-amisulpride.json")
        card = client.post(SERVICE, json=body, headers=_auth()).json()["cards"][0]
    reopened = create_app(settings)
    with TestClient(reopened):
        assert reopened.state.card_ledger.store.report()[0].issued == 1, card["uuid"]
