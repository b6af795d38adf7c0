"""Operators' sessions, kept in the database so that ending one ends every copy of it.

A session cookie carries a random token; the table keeps only its SHA-256. A session is
valid while it has not been ended, its operator is active, it was used within the idle
limit and it is younger than the absolute limit. Sign-out, a new password and an
admin's "sign out everywhere" end sessions for good, so a cookie copied before cannot
come back.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import rowcount, utcnow
from smsgw.models import AdminSession, OperatorUser

# last_seen_at is written at most this often, so reading pages does not write every time.
TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class SessionLimits:
    """How long a session may stay unused (``idle``) and live at all (``absolute``)."""

    idle: dt.timedelta
    absolute: dt.timedelta

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SessionLimits:
        """The limits from ``ADMIN_IDLE_MINUTES`` and ``ADMIN_SESSION_HOURS``."""
        return cls(idle=dt.timedelta(minutes=int(settings["ADMIN_IDLE_MINUTES"])),
                   absolute=dt.timedelta(hours=int(settings["ADMIN_SESSION_HOURS"])))


def token_digest(token: str) -> str:
    """What the table keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: so.Session, user: OperatorUser, address: str, user_agent: str) -> str:
    """Open a session for ``user`` and return its token (for the cookie only; not stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(AdminSession(token_hash=token_digest(token), user_id=user.id, created_at=now, last_seen_at=now,
                        address=address[:80], user_agent=user_agent[:200]))
    return token


def find_session(db: so.Session, token: str, limits: SessionLimits,
                 now: dt.datetime | None = None) -> tuple[AdminSession, OperatorUser] | None:
    """The live session behind ``token`` and its operator, or None when it has ended,
    its operator is switched off, or it is idle or old past ``limits``."""
    now = now or utcnow()
    row = db.execute(
        sa.select(AdminSession, OperatorUser)
        .join(OperatorUser, OperatorUser.id == AdminSession.user_id)
        .where(AdminSession.token_hash == token_digest(token), AdminSession.ended_at.is_(None))
    ).first()
    if row is None:
        return None
    session, user = row
    if not user.active or not _within(session, limits, now):
        return None
    return session, user


def _within(session: AdminSession, limits: SessionLimits, now: dt.datetime) -> bool:
    """Used within the idle limit and younger than the absolute one."""
    return now - session.last_seen_at <= limits.idle and now - session.created_at <= limits.absolute


def needs_touch(session: AdminSession, now: dt.datetime | None = None) -> bool:
    """True when ``last_seen_at`` is old enough to be worth writing again."""
    return (now or utcnow()) - session.last_seen_at >= TOUCH_EVERY


def touch(db: so.Session, session_id: int, now: dt.datetime | None = None) -> None:
    """Record that the session was used now (idle time starts again)."""
    db.execute(sa.update(AdminSession).where(AdminSession.id == session_id, AdminSession.ended_at.is_(None))
               .values(last_seen_at=now or utcnow()))


def end_session(db: so.Session, token: str, reason: str) -> None:
    """End the session behind ``token`` (sign-out)."""
    db.execute(
        sa.update(AdminSession)
        .where(AdminSession.token_hash == token_digest(token), AdminSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )


def end_all(db: so.Session, user_id: int, reason: str) -> int:
    """End every live session of an operator; returns how many were live."""
    result = db.execute(sa.update(AdminSession).where(AdminSession.user_id == user_id, AdminSession.ended_at.is_(None))
                        .values(ended_at=utcnow(), end_reason=reason))
    return rowcount(result)


def live_sessions(db: so.Session, user_id: int, limits: SessionLimits) -> list[AdminSession]:
    """The operator's sessions that would still open a page, newest first."""
    now = utcnow()
    rows = db.scalars(sa.select(AdminSession).where(AdminSession.user_id == user_id, AdminSession.ended_at.is_(None))
                      .order_by(AdminSession.last_seen_at.desc())).all()
    return [s for s in rows if _within(s, limits, now)]
