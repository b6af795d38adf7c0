"""Is the service working? The facts behind `/healthz` and the dashboard's health block.

Each check answers in one line with no personal data (the endpoint needs no sign-in):
the database answers, the schema is at the latest migration, the scheduler's heartbeat
is fresh, no reply has waited too long, and the gateway is not paused.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import READ_ONLY, utcnow
from smsgw.messaging.outbox import PRIORITY
from smsgw.models import OutboundMessage
from smsgw.services import runtime_state

log = logging.getLogger(__name__)

# The scheduler beats every ~10 s: two minutes of silence means it is down or stuck.
HEARTBEAT_MAX_AGE = dt.timedelta(minutes=2)
# A farmer waiting five minutes for a reply has given up on it.
REPLY_MAX_AGE = dt.timedelta(minutes=5)
# A reply stays `sending` only while a drain holds its lease; one older than this is
# someone else's problem (the heartbeat), and bounding it keeps the query on an index.
SENDING_WINDOW = dt.timedelta(days=1)
NAMES = ("database", "schema", "scheduler", "replies", "gateway")
_NUMBER = re.compile(r"\+?\d[\d ]{6,}\d")


@dataclass(frozen=True)
class Check:
    """One fact about the service: its name, whether it holds, and one line saying why."""

    name: str
    ok: bool
    detail: str


def _age(delta: dt.timedelta) -> str:
    """A short, rounded duration: ``45 s``, ``3 min``, ``2 h 5 min``, ``3 days``."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def _one_line(text: Any, limit: int = 200) -> str:
    """``text`` on one line, phone-like numbers hidden, cut to ``limit`` characters."""
    line = _NUMBER.sub("[number]", " ".join(str(text).split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _limit(settings: Mapping[str, Any] | None, key: str, default: dt.timedelta) -> dt.timedelta:
    """A threshold in seconds from ``settings`` when given there, else ``default``."""
    try:
        return dt.timedelta(seconds=int((settings or {})[key]))
    except (KeyError, TypeError, ValueError):
        return default


@cache
def head_revisions() -> frozenset[str]:
    """The latest migration(s) this code ships (read once: they cannot change under us)."""
    from alembic.script import ScriptDirectory

    from smsgw.migrate import alembic_config

    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _schema(session: so.Session) -> Check:
    from smsgw.migrate import stored_revisions

    current = stored_revisions(session.connection())
    head = head_revisions()
    if current == head:
        return Check("schema", True, f"at {', '.join(sorted(head))}")
    if not current:
        return Check("schema", False, "never migrated: run `smsgw init`")
    return Check(
        "schema", False, f"at {', '.join(sorted(current))}, latest is {', '.join(sorted(head))}: run `smsgw init`"
    )


def _scheduler(session: so.Session, now: dt.datetime, limit: dt.timedelta) -> Check:
    beat = runtime_state.get(session, runtime_state.SCHEDULER)
    if beat is None:
        return Check("scheduler", False, "no heartbeat ever: is `smsgw scheduler` running?")
    age = now - beat.updated_at
    if age > limit:
        return Check(
            "scheduler", False, f"last heartbeat {_age(age)} ago (limit {_age(limit)}): is `smsgw scheduler` running?"
        )
    return Check("scheduler", True, f"last heartbeat {_age(age)} ago")


def _replies(session: so.Session, now: dt.datetime, limit: dt.timedelta) -> Check:
    out = OutboundMessage
    # Two narrow queries rather than one `status IN (...)`: queued replies are a range of
    # the drain's partial index (status = 'queued', by priority), sending ones a range of
    # the replies' index on created_at; neither scans the whole outbox.
    queued = session.execute(
        sa.select(sa.func.count(out.id), sa.func.min(out.created_at)).where(
            out.status == "queued", out.priority == PRIORITY["reply"], out.purpose == "reply"
        )
    ).one()
    sending = session.execute(
        sa.select(sa.func.count(out.id), sa.func.min(out.created_at)).where(
            out.purpose == "reply", out.created_at >= now - SENDING_WINDOW, out.status == "sending"
        )
    ).one()
    waiting = (queued[0] or 0) + (sending[0] or 0)
    if not waiting:
        return Check("replies", True, "no reply waiting")
    oldest = min(stamp for stamp in (queued[1], sending[1]) if stamp is not None)
    age = now - oldest
    detail = f"{waiting} {'reply' if waiting == 1 else 'replies'} waiting, oldest {_age(age)}"
    if age > limit:
        return Check("replies", False, f"{detail} (limit {_age(limit)}): is the outbox drain running?")
    return Check("replies", True, detail)


def _gateway(session: so.Session) -> Check:
    pause = runtime_state.get(session, runtime_state.GATEWAY_PAUSE)
    if pause is None:
        return Check("gateway", True, "sending")
    value = pause.value or {}
    detail = f"paused: {_one_line(value.get('reason') or 'no reason recorded')}"
    if value.get("since"):
        detail += f"; since {_one_line(value['since'], 40)}"
    if value.get("retry_at"):
        detail += f"; next try {_one_line(value['retry_at'], 40)}"
    return Check("gateway", False, detail)


def _guarded(session: so.Session, name: str, probe: Callable[[], Check]) -> Check:
    """Run one probe; an error becomes a failed check (logged), never an exception."""
    try:
        return probe()
    except Exception as exc:  # a health check reports every failure, whatever its kind
        log.warning("health check %s failed: %s", name, exc, exc_info=True)
        _rollback(session)
        return Check(name, False, f"could not check ({type(exc).__name__})")


def _rollback(session: so.Session) -> None:
    try:
        session.rollback()
    except Exception:  # the connection is gone; closing the session later releases it
        log.debug("rollback after a failed health check failed too", exc_info=True)


def check(
    bind: so.Session | sa.Engine, now: dt.datetime | None = None, settings: Mapping[str, Any] | None = None
) -> list[Check]:
    """Every health check, in a fixed order; never raises, never writes.

    ``bind``: a session (the caller closes it) or an engine (a read-only session of our
    own). ``settings`` may set HEALTH_HEARTBEAT_MAX_SECONDS and HEALTH_REPLY_MAX_SECONDS.
    """
    now = now or utcnow()
    if isinstance(bind, sa.Engine):
        with so.Session(bind=bind.execution_options(**{READ_ONLY: True})) as session:
            return check(session, now, settings)
    session = bind
    try:
        session.execute(sa.text("SELECT 1"))
    except Exception as exc:
        # The URL and driver message may name hosts and users: they go to the log only.
        log.warning("health check: the database did not answer: %s", exc, exc_info=True)
        _rollback(session)
        return [Check("database", False, f"did not answer ({type(exc).__name__})")] + [
            Check(name, False, "not checked: no database") for name in NAMES[1:]
        ]
    heartbeat = _limit(settings, "HEALTH_HEARTBEAT_MAX_SECONDS", HEARTBEAT_MAX_AGE)
    reply = _limit(settings, "HEALTH_REPLY_MAX_SECONDS", REPLY_MAX_AGE)
    return [
        Check("database", True, "answers"),
        _guarded(session, "schema", lambda: _schema(session)),
        _guarded(session, "scheduler", lambda: _scheduler(session, now, heartbeat)),
        _guarded(session, "replies", lambda: _replies(session, now, reply)),
        _guarded(session, "gateway", lambda: _gateway(session)),
    ]
