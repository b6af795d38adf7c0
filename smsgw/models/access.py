"""Operators' access: their sessions and the sign-in throttles."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Base, utcnow


class AdminSession(Base):
    """One signed-in browser of an operator.

    The cookie holds a random token; only its SHA-256 is stored, so a copy of this table
    opens no session. A session ends (``ended_at``) on sign-out, a new password, an
    admin's "sign out everywhere", or when it is idle or old past the configured limits.
    """

    __tablename__ = "admin_session"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("operator_user.id", ondelete="CASCADE"), index=True)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    last_seen_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    ended_at: so.Mapped[dt.datetime | None]
    # signout, password, everywhere, idle, expired, deactivated
    end_reason: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    address: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    user_agent: so.Mapped[str] = so.mapped_column(sa.String(200), default="")


class SigninThrottle(Base):
    """Failed sign-ins counted for one key, shared by every web worker.

    ``scope`` is ``account`` for one account tried from one address, or ``address`` for
    every account tried from one address. Past a few free failures each new failure
    doubles the wait (``blocked_until``); nothing is ever locked for good.
    """

    __tablename__ = "signin_throttle"
    __table_args__ = (sa.CheckConstraint("scope IN ('account', 'address')", name="scope_known"),)

    key: so.Mapped[str] = so.mapped_column(sa.String(100), primary_key=True)
    scope: so.Mapped[str] = so.mapped_column(sa.String(10))
    # The account's email when it is a real account (never what was typed otherwise).
    account: so.Mapped[str] = so.mapped_column(sa.String(254), default="")
    address: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    failures: so.Mapped[int] = so.mapped_column(default=0)
    first_failure_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    last_failure_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    blocked_until: so.Mapped[dt.datetime | None]
