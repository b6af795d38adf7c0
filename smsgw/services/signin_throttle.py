"""Sign-in throttling that every web worker and thread shares, through the database.

Failures are counted per (account, address) and per address, one row each. A few
failures are free; past them each failure doubles the wait before the next try, up to a
ceiling, so a typing operator waits seconds and a guesser hours, and nothing is ever
locked for good. An attempt is charged *before* its password is checked, under the
row's lock (PostgreSQL ``FOR UPDATE``; SQLite's write lock), so forty simultaneous
guesses cannot check more passwords than the limit; a right password gives the charge
back.

There is deliberately no count per account across addresses: it would let anyone lock
an operator out by guessing from elsewhere, and the right password from a new address
must always work. Guessing one account from many addresses is answered by the password
policy (common passwords refused) and the optional second factor instead.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql, sqlite

from smsgw.db import rowcount, utcnow
from smsgw.models import SigninThrottle

FREE_FAILURES = {"account": 5, "address": 20}
FIRST_WAIT = dt.timedelta(seconds=30)
LONGEST_WAIT = dt.timedelta(minutes=15)
# A key that has been quiet this long starts again from zero.
FORGET_AFTER = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Verdict:
    """Whether an attempt may go on, and otherwise how many seconds to wait."""

    allowed: bool
    wait_seconds: int = 0


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def keys(email: str, address: str) -> dict[str, str]:
    """The throttle key of each scope for this email typed from this address."""
    return {"account": "acct:" + _hash(f"{email}\n{address}"), "address": "addr:" + _hash(address)}


def wait_after(scope: str, failures: int) -> dt.timedelta | None:
    """How long the next try must wait after ``failures`` recent failures (None: no wait)."""
    over = failures - FREE_FAILURES[scope]
    if over < 0:
        return None
    return min(LONGEST_WAIT, FIRST_WAIT * int(2 ** min(over, 30)))


def _insert(db: so.Session) -> Callable[[type[SigninThrottle]], postgresql.Insert | sqlite.Insert]:
    dialect = db.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def charge(db: so.Session, email: str, address: str, account: str = "",
           now: dt.datetime | None = None) -> Verdict:
    """Count one attempt for ``email`` from ``address`` unless a wait is running.

    ``account`` is the real account's email (empty for an unknown one: what was typed
    is not kept). The caller commits; the rows stay locked until then.
    """
    now = now or utcnow()
    wanted = keys(email, address)
    insert = _insert(db)
    for scope, key in wanted.items():
        db.execute(insert(SigninThrottle).values(
            key=key, scope=scope, account=account if scope == "account" else "", address=address[:80],
            failures=0, first_failure_at=now, last_failure_at=now,
        ).on_conflict_do_nothing(index_elements=["key"]))
    rows = db.scalars(sa.select(SigninThrottle).where(SigninThrottle.key.in_(wanted.values()))
                      .order_by(SigninThrottle.key).with_for_update()).all()
    waits = [row.blocked_until - now for row in rows if row.blocked_until is not None and row.blocked_until > now]
    if waits:
        return Verdict(False, math.ceil(max(waits).total_seconds()))
    for row in rows:
        if now - row.last_failure_at > FORGET_AFTER:
            row.failures, row.first_failure_at = 0, now
        row.failures += 1
        row.last_failure_at = now
        wait = wait_after(row.scope, row.failures)
        row.blocked_until = now + wait if wait is not None else None
    db.flush()
    return Verdict(True)


def forgive(db: so.Session, email: str, address: str, attempts: int = 1) -> None:
    """A right answer: the account's count from this address is cleared, and the
    address gets back what these ``attempts`` charged (its other failures stay)."""
    wanted = keys(email, address)
    db.execute(sa.delete(SigninThrottle).where(SigninThrottle.key == wanted["account"]))
    db.execute(sa.update(SigninThrottle).where(SigninThrottle.key == wanted["address"]).values(
        failures=sa.case((SigninThrottle.failures > attempts, SigninThrottle.failures - attempts), else_=0),
        blocked_until=None,
    ))


def active(db: so.Session, now: dt.datetime | None = None) -> list[SigninThrottle]:
    """Throttles with failures in the last hour, waiting ones first (for the admin)."""
    since = (now or utcnow()) - FORGET_AFTER
    return list(db.scalars(sa.select(SigninThrottle).where(SigninThrottle.last_failure_at >= since,
                                                           SigninThrottle.failures > 0)
                           .order_by(SigninThrottle.blocked_until.desc().nulls_last(),
                                     SigninThrottle.last_failure_at.desc())))


def clear(db: so.Session, key: str | None = None) -> int:
    """Remove one throttle (or all of them); returns how many were removed."""
    query = sa.delete(SigninThrottle)
    if key is not None:
        query = query.where(SigninThrottle.key == key)
    return rowcount(db.execute(query))
