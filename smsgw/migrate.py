"""Schema migrations through Alembic, the only way the schema changes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from smsgw import resources


def alembic_config(url: str | None = None, connection: sa.Connection | None = None) -> Config:
    """An Alembic config for our migrations folder, on ``url`` or an open connection."""
    cfg = Config(str(resources.alembic_ini()))
    cfg.set_main_option("script_location", str(resources.migrations_dir()))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def stored_revisions(conn: sa.Connection) -> frozenset[str]:
    """The revisions recorded in the database (empty when never migrated).

    Read from the table itself: Alembic's context logs its set-up at INFO on every call,
    which would fill the log of every /healthz probe and start-up check.
    """
    if not sa.inspect(conn).has_table("alembic_version"):
        return frozenset()
    return frozenset(conn.scalars(sa.text("SELECT version_num FROM alembic_version")))
