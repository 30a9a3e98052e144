"""The schema comes from the shipped migrations, and matches the models exactly."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import inspect, text

from cds.feedback import FeedbackStore
from cds.feedback.migrate import HEAD_REVISION, alembic_config, current_revision, head_revision
from cds.feedback.models import VERSION_TABLE, Base
from tests.feedback import postgres
from tests.feedback.conftest import OpenStore

TABLES = {"issued_cards", "feedback", "suppressions", "token_uses"}


def test_opening_migrates_an_empty_database_to_head(store: FeedbackStore) -> None:
    assert set(inspect(store.engine).get_table_names()) == TABLES | {VERSION_TABLE}
    with store.engine.connect() as connection:
        assert current_revision(connection) == head_revision() == "0004"


def test_migrated_schema_matches_the_models(store: FeedbackStore) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_reopening_a_migrated_database_changes_nothing(open_store: OpenStore) -> None:
    open_store().close()
    store = open_store()
    with store.engine.connect() as connection:
        assert current_revision(connection) == head_revision()


def test_downgrade_removes_the_tables_and_upgrade_restores_them(store: FeedbackStore) -> None:
    engine = store.engine
    with engine.begin() as connection:
        command.downgrade(alembic_config(engine, connection), "base")
    assert set(inspect(engine).get_table_names()) == {VERSION_TABLE}
    with engine.begin() as connection:
        command.upgrade(alembic_config(engine, connection), "head")
    assert set(inspect(engine).get_table_names()) == TABLES | {VERSION_TABLE}


def test_the_head_constant_names_the_newest_script() -> None:
    """``FeedbackStore`` skips Alembic when the database is at ``HEAD_REVISION``: a new
    migration that leaves the constant behind would never run."""
    assert head_revision() == HEAD_REVISION


def test_opening_an_old_schema_migrates_it_to_head(open_store: OpenStore) -> None:
    old = open_store()
    with old.engine.begin() as connection:
        command.downgrade(alembic_config(old.engine, connection), "0002")
    with old.engine.connect() as connection:
        assert current_revision(connection) == "0002"
        assert "explanation" not in {
            c["name"] for c in inspect(connection).get_columns("issued_cards")
        }
    old.close()

    store = open_store()
    with store.engine.connect() as connection:
        assert current_revision(connection) == HEAD_REVISION
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_a_revision_this_package_does_not_ship_is_refused(open_store: OpenStore) -> None:
    """A database migrated further by a newer release is not taken for one at head."""
    open_store().close()
    store = open_store()
    with store.engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    with pytest.raises(CommandError, match="0099"):
        open_store()


def test_a_database_at_head_opens_without_importing_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    FeedbackStore(url).close()
    opened = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cds.feedback import FeedbackStore; "
            f"FeedbackStore({url!r}).close(); print('alembic' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert opened.stdout.strip() == "False"


def test_workers_opening_a_fresh_database_at_once_all_succeed(open_store: OpenStore) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            open_store()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout_in_created_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "feedback.db"
    with FeedbackStore(f"sqlite:///{path}") as store, store.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert pragma("PRAGMA busy_timeout").scalar() == 10_000
        assert pragma("PRAGMA foreign_keys").scalar() == 1
    assert path.is_file()


def test_an_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        FeedbackStore("mysql://localhost/feedback")


def test_without_postgres_binaries_the_reason_names_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(postgres, "DEBIAN_PREFIX", tmp_path)
    assert postgres.find_postgres_bin_dir() is None
    reason = postgres.missing_reason()
    assert reason is not None
    assert "initdb, pg_ctl, postgres" in reason


def test_an_in_memory_sqlite_database_is_refused() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        FeedbackStore("sqlite://")
