"""Alembic environment: migrate the database named by the app's settings."""
from __future__ import annotations

from typing import Any

from alembic import context

import smsgw.models  # noqa: F401  (registers every table on the metadata)
from smsgw.config import load_settings
from smsgw.db import Base, UTCDateTime, make_engine

# Not imported from smsgw.scheduler: that would load APScheduler for every migration.
JOBSTORE_TABLE = "apscheduler_jobs"

config = context.config


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write our UTC type as the plain timezone-aware DateTime it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Leave APScheduler's own job table out of autogenerate and ``alembic check``:
    the scheduler creates and owns it, no migration does."""
    return not (type_ == "table" and name == JOBSTORE_TABLE)


def run_migrations() -> None:
    """Run migrations on a connection handed in by the caller, or on DATABASE_URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or load_settings()["DATABASE_URL"]
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Any) -> None:
    # SQLite: a batch migration rebuilds a table (copy, drop, rename). With foreign keys on,
    # dropping a table that other rows reference fails, so they are off while migrating and
    # checked whole afterwards. The pragma only works outside a transaction.
    sqlite = connection.dialect.name == "sqlite" and not connection.in_transaction()
    if sqlite:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        _migrate(connection)
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
    if sqlite:
        broken = connection.connection.driver_connection.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left rows pointing nowhere: {broken[:5]}")


def _migrate(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        include_name=include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


run_migrations()
