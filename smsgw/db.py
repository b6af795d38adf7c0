"""Engine, sessions and the declarative Base shared by every model.

The web app, the scheduler and the CLI each build their own engine from settings and
use one session per request or job. Nothing here imports Flask: the app factory wires
``Database`` into Flask through ``init_app``.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar, cast

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy import event

# Named constraints: Alembic's SQLite batch mode can only drop or alter a constraint
# it can name, and autogenerate compares names, so every constraint gets one.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend.

    SQLite stores datetimes without a zone and hands back naive values; a naive value
    compared with an aware one raises. This type refuses naive input and always returns
    aware UTC, so no naive datetime exists anywhere in the program.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


Money = Annotated[decimal.Decimal, so.mapped_column(sa.Numeric(14, 2))]
Quantity = Annotated[decimal.Decimal, so.mapped_column(sa.Numeric(14, 3))]
Factor = Annotated[decimal.Decimal, so.mapped_column(sa.Numeric(14, 6))]
Timestamp = Annotated[dt.datetime, so.mapped_column(UTCDateTime())]


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ``escape="\\"``) matching ``text`` anywhere, wildcards literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def error_line(exc: BaseException) -> str:
    """An exception as one short line: the driver's message, not the SQL and its values."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return f"{type(original).__name__}: {lines[0] if lines else ''}"[:300]


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def rowcount(result: sa.Result[*tuple[Any, ...]]) -> int:
    """The rows an UPDATE or DELETE run through ``Session.execute`` matched.

    The session's ``execute`` is typed as returning a plain ``Result`` whatever the
    statement; for DML it is a ``CursorResult``, the only kind that has ``rowcount``.
    """
    return cast("sa.CursorResult[*tuple[Any, ...]]", result).rowcount


class Base(so.DeclarativeBase):
    """Declarative base with named constraints and our column type aliases."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        str: sa.String(),
        dict[str, Any]: sa.JSON(),
        list[Any]: sa.JSON(),
    }


# Execution option of a read-only engine: on SQLite its transactions begin DEFERRED.
READ_ONLY = "smsgw_read_only"


def _sqlite_transactions(engine: sa.Engine) -> None:
    """Let SQLAlchemy, not pysqlite, emit BEGIN, and take the write lock only to write.

    pysqlite starts transactions lazily and not before SELECTs, which breaks SAVEPOINT
    isolation in tests and lets two processes read stale rows before a write. These are
    the two listeners documented by SQLAlchemy for SQLite transactional behaviour.
    A transaction that writes begins IMMEDIATE: a deferred one that reads and then
    writes fails at once with "database is locked" when another writer got there first
    (SQLite does not wait on the busy timeout for a lock upgrade), so it takes the write
    lock at its start and waits its turn. A read-only session (``Database.session(
    read_only=True)``, the admin's GET pages, reports) begins DEFERRED: in WAL mode it
    reads a snapshot and never holds the write lock, so a long report cannot stall a
    farmer's USSD hop.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def make_engine(url: str, connect_timeout: int | None = None, statement_timeout: int | None = None) -> sa.Engine:
    """Build an engine for ``url`` with the per-backend settings we rely on.

    On PostgreSQL, ``connect_timeout`` (seconds) bounds a new connection, and
    ``statement_timeout`` (seconds) makes the server cancel any longer statement, so a
    hung or overloaded database turns into an error the caller can answer in time.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        _sqlite_transactions(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        if connect_timeout:
            connect_args["connect_timeout"] = connect_timeout
        if statement_timeout:
            connect_args["options"] = f"-c statement_timeout={statement_timeout * 1000}"
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args)


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, connect_timeout: int | None = None, statement_timeout: int | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, connect_timeout, statement_timeout)
        self.sessionmaker = so.sessionmaker(bind=self.engine, expire_on_commit=False)
        self.read_sessionmaker = so.sessionmaker(
            bind=self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], web: bool = False) -> Database:
        """The Database of ``settings``; ``web``: with the statement timeout of a web request."""
        return cls(
            settings["DATABASE_URL"],
            connect_timeout=int(settings["DATABASE_CONNECT_TIMEOUT"]),
            statement_timeout=int(settings["DATABASE_STATEMENT_TIMEOUT"]) if web else None,
        )

    @property
    def is_sqlite(self) -> bool:
        """True when the backend is SQLite (no SKIP LOCKED, one writer at a time)."""
        return self.engine.dialect.name == "sqlite"

    def bind(self, bind: sa.Engine | sa.Connection, **session_kwargs: Any) -> None:
        """Point new sessions at ``bind`` (tests bind to a connection in a transaction)."""
        self.sessionmaker = so.sessionmaker(bind=bind, expire_on_commit=False, **session_kwargs)
        self.read_sessionmaker = self.sessionmaker

    @contextmanager
    def session(self, read_only: bool = False) -> Iterator[so.Session]:
        """A session for one job: committed if the block succeeds, rolled back if not.

        ``read_only``: the job only reads (on SQLite it then never takes the write lock).
        """
        session = (self.read_sessionmaker if read_only else self.sessionmaker)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
