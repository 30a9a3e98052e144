"""Fixtures for the protocol tests: an in-process client with the lifespan run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cds.app import create_app
from cds.settings import Settings
from tests.hooks.support import TestClient, example


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with the bundled rules, lifespan run (so the rule base is loaded).

    Server exceptions become responses: a test sees the 500 a client would see.
    """
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def request_body() -> dict[str, Any]:
    """The published restless back call (order-select), a fresh copy per test."""
    return example()
