"""Bring a feedback database to the newest schema, from the migrations in this package.

The migrations ship inside ``cds/feedback/migrations`` (no ``alembic.ini``), so a wheel
install can migrate its database with nothing beside it. ``FeedbackStore`` calls
``upgrade_to_head`` on open; it is a no-op on a database already at head.

Alembic is imported only when a database is not at head: importing it cost about 0.1 s
of every start-up, where one read of the version table tells whether there is anything
to do. ``HEAD_REVISION`` names the newest shipped migration (a test holds it to the
scripts); anything else found in the version table, or no table, goes through Alembic.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from cds.feedback.models import VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD_REVISION",
    "MIGRATIONS_DIR",
    "alembic_config",
    "at_head",
    "current_revision",
    "head_revision",
    "upgrade_to_head",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

HEAD_REVISION = "0004"
"""The newest revision in ``migrations/versions``: change it with every new migration."""

_ALEMBIC_LOCK = threading.Lock()


def alembic_config(engine: Engine, connection: Connection | None = None) -> Config:
    """An Alembic configuration for ``engine``'s database, reusing ``connection`` if given."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates "%": a password containing one must be escaped
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the package ships, read from the migration scripts."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise RuntimeError("no feedback migrations found")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()


def at_head(connection: Connection) -> bool:
    """The version table holds exactly ``HEAD_REVISION`` (no table: not at head)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return False
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
    return list(rows) == [HEAD_REVISION]


def upgrade_to_head(engine: Engine) -> None:
    """Run every pending migration in one transaction on one of ``engine``'s connections.

    Other processes are kept out by the database (see ``migrations/env.py``); other threads
    of this one by a lock, because Alembic keeps the running migration in module globals.
    """
    from alembic import command

    with _ALEMBIC_LOCK, engine.begin() as connection:
        command.upgrade(alembic_config(engine, connection), "head")
