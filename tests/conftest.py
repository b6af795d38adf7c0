"""Fixtures: a real database migrated by Alembic, one outer transaction per test.

SQLite by default (a file under pytest's temp dir); PostgreSQL when TEST_DATABASE_URL
is set. The demo content is seeded once and committed; each test then runs inside a
transaction that is rolled back, with a SAVEPOINT around every commit the code makes.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from smsgw import create_app
from smsgw.config import PROJECT_ROOT
from smsgw.db import Database, make_engine
from smsgw.migrate import upgrade
from smsgw.services.seeding import seed_demo
from tests.support import prerequisites


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{prerequisites.MARK}(condition, reason): skip without it, fail in CI (tests/support/prerequisites.py)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Missing prerequisites skip on a laptop and fail in CI, before any fixture runs."""
    prerequisites.check_marks(item)


def _reset_postgres(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly migrated and seeded database for the whole run."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    db = Database(url)
    with db.session() as session:
        seed_demo(session, PROJECT_ROOT / "content", dt.date.today())
    db.dispose()
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    """The shared engine of the run."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    if outer.is_active:
        outer.rollback()
    conn.close()


@pytest.fixture()
def db(database_url: str, connection: sa.Connection) -> Database:
    """A Database whose sessions join the test's transaction (commits become savepoints)."""
    database = Database.__new__(Database)
    database.url = database_url
    database.engine = connection.engine
    database.bind(connection, join_transaction_mode="create_savepoint")
    return database


@pytest.fixture()
def session(db: Database):
    """A session in the test's transaction (rolled back with it)."""
    session = db.sessionmaker()
    yield session
    session.close()


@pytest.fixture()
def settings(database_url: str) -> dict:
    """Settings for tests: the test database, console gateway, no token."""
    from smsgw.config import load_settings

    return load_settings({"TESTING": True, "DATABASE_URL": database_url, "WEBHOOK_TOKEN": ""})


@pytest.fixture()
def app(database_url: str, connection: sa.Connection) -> Iterator[Flask]:
    """The app, its sessions bound to the test's transaction."""
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "WEBHOOK_TOKEN": ""})
    app.extensions["smsgw.db"].bind(connection, join_transaction_mode="create_savepoint")
    yield app
    app.extensions["smsgw.db"].dispose()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()
