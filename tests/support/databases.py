"""Databases of a test's own, for tests whose code commits for real (processes, servers).

The per-test rolled-back transaction of conftest.py cannot be shared with a server
thread or a child process, so these tests get a fresh migrated and seeded database:
a SQLite file under the test's tmp_path, or a PostgreSQL database created next to
TEST_DATABASE_URL's and dropped afterwards.
"""
from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from smsgw.config import PROJECT_ROOT
from smsgw.db import Database
from smsgw.migrate import upgrade
from smsgw.services.seeding import seed_demo

ON_POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))
BACKENDS = ["sqlite"] + (["postgresql"] if ON_POSTGRES else [])


@contextmanager
def fresh_database(tmp_path: Path, backend: str, *, seed: bool = True, revision: str = "head") -> Iterator[str]:
    """The URL of a new database, migrated to ``revision`` (and seeded with the demo), removed after."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / f'own-{uuid.uuid4().hex[:8]}.db'}"
        _prepare(url, seed, revision)
        yield url
        return
    base = sa.make_url(os.environ["TEST_DATABASE_URL"])
    name = f"smsgw_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        url = base.set(database=name).render_as_string(hide_password=False)
        _prepare(url, seed, revision)
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def _prepare(url: str, seed: bool, revision: str) -> None:
    upgrade(url, revision)
    if not seed:
        return
    db = Database(url)
    try:
        with db.session() as session:
            seed_demo(session, PROJECT_ROOT / "content", dt.date.today())
    finally:
        db.dispose()
