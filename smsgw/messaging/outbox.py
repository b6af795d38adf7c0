"""The outbox: every outbound SMS is a row here before a drain hands it to a gateway.

Enqueue runs inside the caller's transaction, so a message exists exactly when the
change that caused it was committed. A drain claims due rows (marks them ``sending``
and commits) before it calls the gateway, so two drains never send the same row.
"""
from __future__ import annotations

import datetime as dt
import decimal
import random
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.exc import IntegrityError

from smsgw.db import utcnow
from smsgw.messaging.encoding import encode_for_sms
from smsgw.models import OutboundMessage

PRIORITY = {"reply": 0, "receipt": 1, "order": 1, "alert": 2, "bulletin": 5}
MAX_ATTEMPTS = 6
# Bulk that was in flight when a drain died is not worth a duplicate; a reply or an
# order receipt is (at least once).
AT_MOST_ONCE = {"bulletin"}


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
    message = OutboundMessage(
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


def claim_due(session: so.Session, limit: int, now: dt.datetime | None = None) -> list[OutboundMessage]:
    """Mark up to ``limit`` due messages ``sending`` and return them, most urgent first.

    One UPDATE ... WHERE id IN (due ids) RETURNING statement, so the claim is atomic on
    SQLite; on PostgreSQL the due ids are locked with SKIP LOCKED so drains side by side
    take disjoint batches. The caller commits before calling the gateway.
    """
    now = now or utcnow()
    due = (
        sa.select(OutboundMessage.id)
        .where(OutboundMessage.status == "queued", OutboundMessage.next_attempt_at <= now)
        .order_by(OutboundMessage.priority, OutboundMessage.next_attempt_at, OutboundMessage.id)
        .limit(limit)
    )
    due_ids: sa.Select[int] | sa.ScalarSelect[int] = due.scalar_subquery()
    if session.get_bind().dialect.name == "postgresql":
        # PostgreSQL may rescan an IN (subquery) for every row it updates, and each
        # rescan skips the rows this UPDATE already changed and locks the next ones, so
        # LIMIT stops limiting. A materialized CTE runs the locking select once.
        locked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        due_ids = sa.select(locked.c.id)
    claimed_ids = session.scalars(
        sa.update(OutboundMessage)
        .where(OutboundMessage.id.in_(due_ids), OutboundMessage.status == "queued")
        .values(status="sending", claimed_at=now, attempts=OutboundMessage.attempts + 1)
        .returning(OutboundMessage.id)
    ).all()
    if not claimed_ids:
        return []
    rows = session.scalars(
        sa.select(OutboundMessage)
        .where(OutboundMessage.id.in_(claimed_ids))
        .order_by(OutboundMessage.priority, OutboundMessage.next_attempt_at, OutboundMessage.id)
        .execution_options(populate_existing=True)
    ).all()
    return list(rows)


@dataclass(frozen=True)
class SendResult:
    """What the gateway said about one recipient of one request."""

    phone: str
    outcome: str  # "sent", "retry", "failed", or "maybe" (sent or not: the answer was lost)
    message_id: str | None = None
    cost: str | None = None
    error: str = ""


def backoff(attempts: int) -> dt.timedelta:
    """Exponential backoff with full jitter: up to 30 s, 60 s, 120 s ... capped at 1 hour."""
    ceiling = min(3600.0, 30.0 * (2 ** max(0, attempts - 1)))
    return dt.timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def record_result(message: OutboundMessage, result: SendResult, now: dt.datetime | None = None) -> None:
    """Apply the gateway's answer for one message (caller commits)."""
    now = now or utcnow()
    if result.outcome == "sent":
        message.status = "sent"
        message.sent_at = now
        message.gateway_message_id = result.message_id
        message.last_error = ""
        if result.cost:
            currency, _, amount = result.cost.partition(" ")
            try:
                message.cost = decimal.Decimal(amount)
                message.cost_currency = currency[:3] or None
            except decimal.InvalidOperation:
                message.cost = None
    elif result.outcome == "maybe" and message.purpose in AT_MOST_ONCE:
        message.status = "unknown"
        message.final_at = now
        message.last_error = result.error or "no answer from the gateway"
    elif result.outcome in ("retry", "maybe") and message.attempts < MAX_ATTEMPTS:
        message.status = "queued"
        message.next_attempt_at = now + backoff(message.attempts)
        message.last_error = result.error
    else:
        message.status = "failed"
        message.final_at = now
        message.last_error = result.error or "failed"


def recover_stale(session: so.Session, older_than: dt.timedelta, now: dt.datetime | None = None) -> dict[str, int]:
    """Settle ``sending`` rows left by a drain that died.

    Bulk (bulletins) becomes ``unknown``: the gateway may have sent it and a duplicate
    bulletin costs more than a missed one. Replies, receipts and order news go back to
    ``queued``: a person is waiting for them.
    """
    now = now or utcnow()
    stale = (OutboundMessage.status == "sending", OutboundMessage.claimed_at < now - older_than)
    unknown = session.execute(
        sa.update(OutboundMessage)
        .where(*stale, OutboundMessage.purpose.in_(AT_MOST_ONCE))
        .values(status="unknown", final_at=now, last_error="drain stopped during send")
    ).rowcount
    requeued = session.execute(
        sa.update(OutboundMessage)
        .where(*stale, OutboundMessage.purpose.not_in(AT_MOST_ONCE))
        .values(status="queued", next_attempt_at=now)
    ).rowcount
    return {"unknown": unknown, "requeued": requeued}
