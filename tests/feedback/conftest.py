"""Fixtures: every storage test runs on SQLite (a temporary file) and PostgreSQL.

The PostgreSQL server is started once per session by ``tests.feedback.postgres``; each
test gets its database emptied. Without PostgreSQL's binaries those cases are skipped
with the reason shown by ``-ra``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cds.feedback import FeedbackStore
from tests.feedback.postgres import postgres_url, reset_database

__all__ = ["OpenStore", "postgres_url"]  # the session fixture, found by pytest here

OpenStore = Callable[[], FeedbackStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'feedback.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_database(url)
    return url


@pytest.fixture
def open_store(database_url: str) -> Iterator[OpenStore]:
    """Opens stores on the test database (as separate workers would); closes them after."""
    opened: list[FeedbackStore] = []

    def open_one() -> FeedbackStore:
        store = FeedbackStore(database_url)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> FeedbackStore:
    return open_store()
