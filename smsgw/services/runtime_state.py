"""Facts the processes share through the database: heartbeats and a gateway-wide pause.

The scheduler writes its heartbeat every few seconds; `/healthz`, the dashboard and
`smsgw doctor` read it. A drain that finds the gateway refusing every message (a bad
API key, no credit) records a pause here, so every drain waits and the operator sees why.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.exc import IntegrityError

from smsgw.db import rowcount, utcnow
from smsgw.models import RuntimeState

SCHEDULER = "scheduler"
GATEWAY_PAUSE = "gateway_pause"


def put(session: so.Session, name: str, value: dict[str, Any], now: dt.datetime | None = None) -> None:
    """Set ``name`` to ``value`` (created if missing), stamped ``now``; the caller commits."""
    now = now or utcnow()
    updated = rowcount(session.execute(
        sa.update(RuntimeState).where(RuntimeState.name == name).values(value=value, updated_at=now)
    ))
    if updated:
        return
    try:
        with session.begin_nested():
            session.add(RuntimeState(name=name, value=value, updated_at=now))
    except IntegrityError:
        # Another process created it between our UPDATE and INSERT: write over it.
        session.execute(sa.update(RuntimeState).where(RuntimeState.name == name).values(value=value, updated_at=now))


def get(session: so.Session, name: str) -> RuntimeState | None:
    """The row for ``name``, or None when nothing was ever recorded."""
    return session.get(RuntimeState, name, populate_existing=True)


def clear(session: so.Session, name: str) -> bool:
    """Remove ``name``; True when there was something to remove."""
    return bool(rowcount(session.execute(sa.delete(RuntimeState).where(RuntimeState.name == name))))
