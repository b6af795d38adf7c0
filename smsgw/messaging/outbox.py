"""The outbox: every outbound SMS is a row here before a drain hands it to a gateway.

Enqueue runs inside the caller's transaction, so a message exists exactly when the
change that caused it was committed. A drain claims due rows (marks them ``sending``
and commits) before it calls the gateway, so two drains never send the same row.
"""
from __future__ import annotations

import datetime as dt
import decimal
import os
import random
import socket
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.exc import IntegrityError

from smsgw.db import rowcount, utcnow
from smsgw.messaging.encoding import Encoded, encode_for_sms
from smsgw.models import OutboundMessage
from smsgw.phones import is_simulator_number

PRIORITY = {"reply": 0, "receipt": 1, "order": 1, "alert": 2, "bulletin": 5}
MAX_ATTEMPTS = 6
# Bulk that was in flight when a drain died is not worth a duplicate; a reply or an
# order receipt is (at least once).
AT_MOST_ONCE = {"bulletin"}
# last_error of a claimed row the drain has not handed to the gateway yet. A batch is
# sent in several requests: when a drain dies, only the rows of the request in flight may
# have gone out; the rest of its batch carries this mark and is simply queued again.
NOT_YET_SENT = "claimed; not yet handed to the gateway"
# How long a drain's claim on its rows holds unless renewed. A drain renews it while it
# works (one gateway request takes at most ~12 s), so only a stopped drain's rows expire.
LEASE = dt.timedelta(seconds=60)
# Rows claimed before leases existed carry none: recovered after this long.
LEGACY_STALE = dt.timedelta(minutes=2)


def enqueue(
    session: so.Session,
    *,
    to: str,
    text: str,
    purpose: str,
    key: str,
    lang: str = "en",
    contact_id: int | None = None,
    sender_id: str | None = None,
    not_before: dt.datetime | None = None,
) -> OutboundMessage:
    """Queue one SMS; a second call with the same ``key`` returns the first row unchanged."""
    existing = session.scalar(sa.select(OutboundMessage).where(OutboundMessage.idempotency_key == key))
    if existing is not None:
        return existing
    encoded = encode_for_sms(text, lang)
    simulated = is_simulator_number(to)
    message = OutboundMessage(
        status="simulated" if simulated else "queued",
        final_at=utcnow() if simulated else None,
        idempotency_key=key,
        to_phone=to,
        contact_id=contact_id,
        text=encoded.text,
        purpose=purpose,
        priority=PRIORITY[purpose],
        encoding=encoded.encoding,
        segments=encoded.segments,
        sender_id=sender_id,
        next_attempt_at=not_before or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Another transaction queued the same key between our check and our insert.
        return session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.idempotency_key == key)
        ).one()
    return message


@dataclass(frozen=True)
class Queued:
    """One message for ``enqueue_many``: the arguments ``enqueue`` takes, as a value."""

    to: str
    text: str
    key: str
    lang: str = "en"
    contact_id: int | None = None


def enqueue_many(
    session: so.Session,
    messages: list[Queued],
    *,
    purpose: str,
    sender_id: str | None = None,
    not_before: dt.datetime | None = None,
) -> None:
    """Queue many SMS in one statement; a message whose key is already queued is skipped.

    The same contract as ``enqueue`` row by row (the unique key decides), for bulk
    senders: ON CONFLICT DO NOTHING settles a race with another transaction without a
    savepoint per row. Each distinct text is encoded once.
    """
    if not messages:
        return
    now = utcnow()
    encoded: dict[tuple[str, str], Encoded] = {}
    rows = []
    for message in messages:
        found = encoded.get((message.text, message.lang))
        if found is None:
            found = encoded[(message.text, message.lang)] = encode_for_sms(message.text, message.lang)
        simulated = is_simulator_number(message.to)
        rows.append((
            message.key, message.to, message.contact_id, found.text, found.encoding, found.segments,
            "simulated" if simulated else "queued", now if simulated else None,
        ))
    shared = {
        "purpose": purpose, "priority": PRIORITY[purpose], "sender_id": sender_id, "attempts": 0,
        "next_attempt_at": not_before or now, "last_error": "", "created_at": now,
    }
    _insert_or_skip(session, rows, shared)


# The columns of the rows ``enqueue_many`` builds; the others are the same for the whole call.
_PER_ROW = ("idempotency_key", "to_phone", "contact_id", "text", "encoding", "segments", "status", "final_at")


def _insert_or_skip(session: so.Session, rows: list[tuple[Any, ...]], shared: dict[str, Any]) -> None:
    """INSERT INTO outbound_message ... ON CONFLICT (idempotency_key) DO NOTHING, for many rows.

    ``rows`` hold the ``_PER_ROW`` columns, ``shared`` a value per column for all of them.
    On PostgreSQL the columns go as arrays into one ``INSERT ... SELECT FROM unnest(...)``:
    one round trip, near COPY's speed (a multi-row VALUES binds every cell and compiles a
    new statement each time: slower than executemany). SQLite takes them by executemany.
    """
    table = TABLE
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        arrays = [
            sa.bindparam(f"rows_{name}", list(values), type_=postgresql.ARRAY(table.c[name].type))
            for name, values in zip(_PER_ROW, zip(*rows, strict=True), strict=True)
        ]
        given = sa.func.unnest(*arrays).table_valued(*_PER_ROW).render_derived()
        source = sa.select(
            *(given.c[name] for name in _PER_ROW),
            *(sa.literal(value, table.c[name].type) for name, value in shared.items()),
        )
        session.execute(
            postgresql.insert(table)
            .from_select([*_PER_ROW, *shared], source)
            .on_conflict_do_nothing(index_elements=[table.c.idempotency_key])
        )
        return
    from sqlalchemy.dialects import sqlite

    session.execute(
        sqlite.insert(table).on_conflict_do_nothing(index_elements=[table.c.idempotency_key]),
        [{**shared, **dict(zip(_PER_ROW, row, strict=True))} for row in rows],
    )


CLAIM_ORDER = (OutboundMessage.priority, OutboundMessage.next_attempt_at, OutboundMessage.text, OutboundMessage.id)


def drain_identity() -> str:
    """This process's name as a drain (host and pid), written on the rows it claims."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def claim_due(
    session: so.Session,
    limit: int,
    now: dt.datetime | None = None,
    keys: Collection[str] | None = None,
    owner: str | None = None,
    lease: dt.timedelta = LEASE,
) -> list[OutboundMessage]:
    """Mark up to ``limit`` due messages ``sending`` and return them, most urgent first.

    One UPDATE ... WHERE id IN (due ids) RETURNING statement (one round trip), so the
    claim is atomic on SQLite; on PostgreSQL the due ids are locked with SKIP LOCKED so
    drains side by side take disjoint batches. The caller commits before calling the
    gateway. ``keys``: claim only these messages (an operator's command sends what it
    caused, nothing else). Each claimed row carries ``owner`` (default: this process) and
    a lease until ``now + lease``, which the drain renews while it works (``renew_lease``).
    """
    claim = _claim(session, list(TABLE.c), limit, now or utcnow(), keys, owner, lease, mark=False)
    found = session.scalars(
        sa.select(OutboundMessage).from_statement(claim).execution_options(populate_existing=True)
    ).all()
    return _in_claim_order(session, list(found))


def claim_for_sending(session: so.Session, limit: int, keys: Collection[str] | None = None, owner: str | None = None,
                      lease: dt.timedelta = LEASE) -> list[sa.Row[Any]]:
    """``claim_due`` for a drain: plain rows of the columns it sends and settles with (no
    ORM objects to build), marked ``NOT_YET_SENT`` by the same statement; the drain
    clears the mark of each request's rows just before making it."""
    claim = _claim(session, [TABLE.c[name] for name in _SENDING], limit, utcnow(), keys, owner, lease, mark=True)
    return _in_claim_order(session, list(session.execute(claim)))


# A declarative model's __table__ is typed as any FromClause; here it is a Table.
TABLE = cast(sa.Table, OutboundMessage.__table__)
# What a drain reads of a claimed message, and the claim order's columns.
_SENDING = ("id", "to_phone", "contact_id", "text", "sender_id", "purpose", "attempts", "priority", "next_attempt_at")
# A claimed message as a drain reads it: an object (``claim_due``) or a plain row.
Claimed = OutboundMessage | sa.Row[Any]


def _claim(
    session: so.Session, columns: list[sa.Column[Any]], limit: int, now: dt.datetime, keys: Collection[str] | None,
    owner: str | None, lease: dt.timedelta, mark: bool,
) -> sa.Select[Any] | sa.Update:
    """The claim statement, returning ``columns`` of the claimed rows."""
    due = (
        sa.select(OutboundMessage.id)
        .where(OutboundMessage.status == "queued", OutboundMessage.next_attempt_at <= now)
        .where(OutboundMessage.idempotency_key.in_(keys) if keys is not None else sa.true())
        # Identical texts next to each other, so that a drain can send them in one request.
        .order_by(*CLAIM_ORDER)
        .limit(limit)
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    due_ids: sa.Select[int] | sa.ScalarSelect[int] = due.scalar_subquery()
    if postgres:
        # PostgreSQL may rescan an IN (subquery) for every row it updates, and each
        # rescan skips the rows this UPDATE already changed and locks the next ones, so
        # LIMIT stops limiting. A materialized CTE runs the locking select once.
        locked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        due_ids = sa.select(locked.c.id)
    claim = (
        sa.update(TABLE)
        .where(TABLE.c.id.in_(due_ids), TABLE.c.status == "queued")
        .values(
            status="sending", claimed_at=now, claimed_by=owner or drain_identity(), lease_until=now + lease,
            attempts=TABLE.c.attempts + 1, **({"last_error": NOT_YET_SENT} if mark else {}),
        )
        .returning(*columns)
    )
    if not postgres:
        return claim
    # Still one round trip: the claimed rows come back through an outer SELECT that puts
    # them in claim order, by the database's own collation of the texts.
    claimed = claim.cte("claimed")
    return sa.select(*claimed.c).order_by(*(claimed.c[column.key] for column in CLAIM_ORDER))


def _in_claim_order(session: so.Session, rows: list[Any]) -> list[Any]:
    """The claimed rows most urgent first: PostgreSQL sorted them; SQLite's BINARY
    collation orders text by code point, as Python does."""
    if session.get_bind().dialect.name == "postgresql":
        return rows
    return sorted(rows, key=lambda row: (row.priority, row.next_attempt_at, row.text, row.id))


@dataclass(frozen=True)
class SendResult:
    """What the gateway said about one recipient of one request."""

    phone: str
    # "sent", "retry", "failed", "maybe" (sent or not: the answer was lost), or "pause"
    # (the gateway refuses every message, e.g. a bad API key or no credit: the message
    # waits for the operator's fix, no attempt spent).
    outcome: str
    message_id: str | None = None
    cost: str | None = None
    error: str = ""


def backoff(attempts: int) -> dt.timedelta:
    """Exponential backoff with full jitter: up to 30 s, 60 s, 120 s ... capped at 1 hour."""
    ceiling = min(3600.0, 30.0 * (2 ** max(0, attempts - 1)))
    return dt.timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def record_result(message: OutboundMessage, result: SendResult, now: dt.datetime | None = None) -> None:
    """Apply the gateway's answer for one message (caller commits)."""
    for name, value in settle(message, result, now or utcnow()).items():
        setattr(message, name, value)


def settle(message: Claimed, result: SendResult, now: dt.datetime) -> dict[str, Any]:
    """The columns the gateway's answer sets on one claimed message, and their values.

    ``record_result`` applies them to the object; a drain writes a whole request's in
    one statement (``drain.write_rows``), reading only ``message.purpose`` and ``attempts``.
    """
    if result.outcome == "sent":
        cost = currency = None
        if result.cost:
            code, _, amount = result.cost.partition(" ")
            try:
                cost, currency = decimal.Decimal(amount), code[:3] or None
            except decimal.InvalidOperation:
                pass  # sent all the same: an unreadable price is no reason to resend
        return {"status": "sent", "sent_at": now, "gateway_message_id": result.message_id, "last_error": "",
                "cost": cost, "cost_currency": currency, "lease_until": None}
    if result.outcome == "maybe" and message.purpose in AT_MOST_ONCE:
        error, status = result.error or "no answer from the gateway", "unknown"
    elif result.outcome in ("retry", "maybe") and message.attempts < MAX_ATTEMPTS:
        return {"status": "queued", "next_attempt_at": now + backoff(message.attempts), "last_error": result.error,
                "lease_until": None}
    else:
        error, status = result.error or "failed", "failed"
    return {"status": status, "final_at": now, "last_error": error, "lease_until": None}


def requeue_failed(session: so.Session, message_id: int, now: dt.datetime | None = None) -> bool:
    """Queue a failed message again, now, with a fresh count of attempts; False when it is
    not failed (already retried by a double click or another operator: conditional update).

    The first attempt's gateway id is cleared (kept in ``last_error``): a late delivery
    report for it must not move the new attempt.
    """
    found = session.get(OutboundMessage, message_id)
    if found is None or found.status != "failed":
        return False
    trace = f"retried by an operator after: {found.last_error or 'failed'}"
    if found.gateway_message_id:
        trace += f" (first attempt {found.gateway_message_id})"
    done = rowcount(session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.id == message_id, OutboundMessage.status == "failed")
        .values(status="queued", attempts=0, next_attempt_at=now or utcnow(), final_at=None,
                gateway_message_id=None, last_error=trace[:500])
        .execution_options(synchronize_session=False)
    ))
    session.refresh(found)
    return bool(done)


def renew_lease(session: so.Session, owner: str, lease: dt.timedelta = LEASE, now: dt.datetime | None = None) -> int:
    """Extend ``owner``'s claim on every row it is still sending; the caller commits."""
    now = now or utcnow()
    return rowcount(session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.status == "sending", OutboundMessage.claimed_by == owner)
        .values(lease_until=now + lease)
    ))


def release(session: so.Session, messages: Collection[Claimed], owner: str) -> None:
    """Put ``owner``'s claimed rows back in the queue, due now, as if never claimed (no
    attempt spent); rows another drain has taken over since are left to it.

    One UPDATE for them all; the objects are not refreshed (the caller is done with them).
    """
    if not messages:
        return
    session.execute(
        sa.update(OutboundMessage)
        .where(
            OutboundMessage.id.in_([message.id for message in messages]),
            OutboundMessage.status == "sending",
            OutboundMessage.claimed_by == owner,
        )
        .values(
            status="queued", attempts=sa.case((OutboundMessage.attempts > 0, OutboundMessage.attempts - 1), else_=0),
            next_attempt_at=utcnow(), claimed_at=None, claimed_by=None, lease_until=None, last_error="",
        )
        .execution_options(synchronize_session=False)
    )


def recover_stale(session: so.Session, now: dt.datetime | None = None) -> dict[str, int]:
    """Settle ``sending`` rows whose drain stopped: their lease ran out without renewal.

    A live drain renews its lease, so its rows are never taken from it, however slow the
    gateway. Bulk (bulletins) that was in flight becomes ``unknown``: the gateway may
    have sent it and a duplicate bulletin costs more than a missed one. Replies, receipts
    and order news go back to ``queued``: a person is waiting for them. Rows the drain had
    claimed but not yet handed to the gateway (``NOT_YET_SENT``) were never sent: queued
    again.
    """
    now = now or utcnow()
    expired = sa.or_(
        OutboundMessage.lease_until < now,
        sa.and_(OutboundMessage.lease_until.is_(None), OutboundMessage.claimed_at < now - LEGACY_STALE),
    )
    stale = (OutboundMessage.status == "sending", expired)
    never_sent = OutboundMessage.last_error == NOT_YET_SENT
    unknown = rowcount(session.execute(
        sa.update(OutboundMessage)
        .where(*stale, OutboundMessage.purpose.in_(AT_MOST_ONCE), sa.not_(never_sent))
        .values(status="unknown", final_at=now, lease_until=None, last_error="drain stopped during send")
    ))
    requeued = rowcount(session.execute(
        sa.update(OutboundMessage)
        .where(*stale, sa.or_(OutboundMessage.purpose.not_in(AT_MOST_ONCE), never_sent))
        .values(status="queued", next_attempt_at=now, lease_until=None)
    ))
    return {"unknown": unknown, "requeued": requeued}
