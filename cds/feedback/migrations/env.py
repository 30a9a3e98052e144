"""Alembic environment for the feedback tables, run by ``cds.feedback.migrate``.

The store hands its own connection over (``config.attributes["connection"]``), already in
a transaction, so migrations use the store's engine and its SQLite pragmas, and the caller
commits. Several workers may open the same database at once: on PostgreSQL an advisory
lock held for the transaction lets one of them migrate while the others wait and then find
the schema at head; on SQLite the store's ``BEGIN IMMEDIATE`` does the same.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

from cds.feedback.models import VERSION_TABLE, Base

MIGRATION_LOCK_KEY = 0x6364_7366_6462_0001
"""An arbitrary 64-bit key for ``pg_advisory_xact_lock`` ("cdsfdb" + 1)."""


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def _main() -> None:
    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=Base.metadata,
            version_table=VERSION_TABLE,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as own:
            _run(own)
    finally:
        engine.dispose()


_main()
