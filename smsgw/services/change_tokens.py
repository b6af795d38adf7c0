"""Tokens that change whenever committed data of a watched table does, for caches in every process.

A statement that writes a watched table, through any SQLAlchemy engine of a process that
imported this module, marks its connection; when that transaction commits, the same
transaction first writes a new random token into ``runtime_state`` (one row per group of
tables). A process that cached something reads the tokens (one indexed SELECT) and keeps
its copy only while they are unchanged; a random token, unlike a counter, never repeats
after a rollback. Writes that bypass SQLAlchemy (COPY, psql) are not seen here: a cache
bounds its age for those (``services.read_cache``).

``services.prices`` and ``services.catalog`` import this module, so every process that
deals with prices (the web app, the scheduler, the CLI) announces its writes.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

from smsgw.db import utcnow
from smsgw.models import RuntimeState

CATALOG, PRICES = "read_cache:catalog", "read_cache:prices"
# Each watched table and the token its writes change.
WATCHED = {
    "commodity": CATALOG,
    "unit": CATALOG,
    "market": CATALOG,
    "grade": CATALOG,
    "grade_limit": CATALOG,
    "membership": CATALOG,
    # Deleting a group (or its members) removes memberships by ON DELETE CASCADE, unseen here.
    "producer_group": CATALOG,
    "price_observation": PRICES,
}
_DIRTY = "smsgw.change_tokens.dirty"
# The table a write statement writes to; "FOR UPDATE OF" and "DO UPDATE SET" name none.
_WRITE = re.compile(
    r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO|TRUNCATE(?:\s+TABLE)?)"
    r"\s+(?:ONLY\s+)?(?:\w+\.)?\"?(\w+)",
    re.IGNORECASE,
)
_WRITE_STARTS = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "WITH")


@event.listens_for(sa.Engine, "before_cursor_execute")
def _note_write(conn: sa.Connection, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
    """Mark the connection with the tokens its uncommitted writes will change."""
    if not statement.lstrip()[:8].upper().startswith(_WRITE_STARTS):
        return  # a SELECT: most statements, and the long ones
    for match in _WRITE.finditer(statement, 0, 2000):
        token = WATCHED.get(match.group(1).lower())
        if token:
            conn.info.setdefault(_DIRTY, set()).add(token)


@event.listens_for(sa.Engine, "commit")
def _bump_on_commit(conn: sa.Connection) -> None:
    """Change the tokens of what this transaction wrote, inside it, just before it commits."""
    dirty = conn.info.pop(_DIRTY, None)
    if dirty:
        bump(conn, dirty)


@event.listens_for(sa.Engine, "rollback")
def _forget_on_rollback(conn: sa.Connection) -> None:
    """Nothing written by a rolled-back transaction is left to announce."""
    conn.info.pop(_DIRTY, None)


def bump(conn: sa.Connection, names: set[str]) -> None:
    """Give each token in ``names`` a new value (created on first use), in ``conn``'s transaction.

    Rows are written in name order, so two transactions bumping both never deadlock.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for name in sorted(names):
        values = {"value": {"token": uuid.uuid4().hex}, "updated_at": utcnow()}
        upsert = dialect.insert(RuntimeState).values(name=name, **values)
        conn.execute(upsert.on_conflict_do_update(index_elements=[RuntimeState.name], set_=values))


def uncommitted(conn: sa.Connection) -> set[str]:
    """The tokens that ``conn``'s open transaction has written data for (not committed yet)."""
    return set(conn.info.get(_DIRTY, ()))


def token_column(name: str) -> sa.ScalarSelect[Any]:
    """A column giving token ``name``'s value (None before its first change)."""
    return sa.select(RuntimeState.value["token"].as_string()).where(RuntimeState.name == name).scalar_subquery()
