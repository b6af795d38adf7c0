"""Messages on the wire: inbound SMS, the outbox, delivery reports, USSD sessions, bulletin runs."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, ClassVar

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Base, utcnow
from smsgw.models.catalog import Market
from smsgw.models.people import Contact

# Outbound message states. Moves only forward: queued -> sending -> sent -> delivered,
# with failed or unknown as ends; a simulated contact's messages are simulated at once.
OUTBOX_STATUSES = (
    "queued",  # waiting for a drain; next_attempt_at says when it may be tried
    "sending",  # claimed by a drain, committed before the gateway call
    "sent",  # the gateway accepted it; gateway_message_id holds its id
    "delivered",  # final: the delivery report said Success
    "failed",  # final: permanent gateway error, failed delivery report, or out of retries
    "unknown",  # final: a drain died between the gateway call and recording its answer
    "simulated",  # final: for a contact of the admin's phone simulator; never sent
)
PURPOSES = ("reply", "receipt", "order", "bulletin", "alert")


class InboundMessage(Base):
    """An SMS received from the gateway, stored once per gateway id."""

    __tablename__ = "inbound_message"

    __table_args__ = (
        sa.CheckConstraint("status IN ('received', 'handled', 'error')", name="status_known"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    gateway_id: so.Mapped[str] = so.mapped_column(sa.String(80), unique=True)
    from_phone: so.Mapped[str] = so.mapped_column(sa.String(16), index=True)
    to: so.Mapped[str] = so.mapped_column(sa.String(32), default="")
    text: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    link_id: so.Mapped[str | None] = so.mapped_column(sa.String(80))
    network_code: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    sent_at: so.Mapped[dt.datetime | None]
    received_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    contact_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("contact.id"))
    # What the router made of it (price, sub, stop, unknown...), for the monitor.
    command: so.Mapped[str] = so.mapped_column(sa.String(20), default="")
    # Stored before it is handled, so a bug in a handler cannot lose it.
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="received", server_default="handled")
    # The handler's exception when status is "error" (an operator can retry it).
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # Played in the admin's phone simulator, not received from the gateway.
    simulated: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())

    contact: so.Mapped[Contact | None] = so.relationship()


class OutboundMessage(Base):
    """The outbox: one row per message and recipient.

    Written in the same transaction as the change that caused it; a drain sends it.
    ``idempotency_key`` makes a second enqueue of the same message a no-op.
    """

    __tablename__ = "outbound_message"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'unknown', 'simulated')",
            name="status_known",
        ),
        sa.CheckConstraint(
            "purpose IN ('reply', 'receipt', 'order', 'bulletin', 'alert')", name="purpose_known"
        ),
        sa.CheckConstraint("encoding IN ('gsm7', 'ucs2')", name="encoding_known"),
        sa.CheckConstraint("segments >= 1", name="segments_positive"),
        sa.CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        # Exactly the drain's query: due queued rows, most urgent first.
        sa.Index(
            "ix_outbound_message_due",
            "priority",
            "next_attempt_at",
            sqlite_where=sa.text("status = 'queued'"),
            postgresql_where=sa.text("status = 'queued'"),
        ),
        # The reply caps count a phone's recent replies on every inbound SMS, and a
        # bulletin run counts each subscriber's bulletins of the day: without these,
        # both scan the whole outbox.
        sa.Index("ix_outbound_message_phone_created", "to_phone", "created_at"),
        sa.Index("ix_outbound_message_contact_created", "contact_id", "created_at"),
        # The global reply cap counts all replies of the last hour on every inbound SMS.
        sa.Index(
            "ix_outbound_message_reply_created",
            "created_at",
            sqlite_where=sa.text("purpose = 'reply'"),
            postgresql_where=sa.text("purpose = 'reply'"),
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    idempotency_key: so.Mapped[str] = so.mapped_column(sa.String(160), unique=True)
    to_phone: so.Mapped[str] = so.mapped_column(sa.String(16))
    contact_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("contact.id"))
    text: so.Mapped[str] = so.mapped_column(sa.Text)
    purpose: so.Mapped[str] = so.mapped_column(sa.String(10))
    # Lower goes first: replies (0) before receipts and order news (1) before bulk (5).
    priority: so.Mapped[int] = so.mapped_column(default=0)
    encoding: so.Mapped[str] = so.mapped_column(sa.String(5), default="gsm7")
    segments: so.Mapped[int] = so.mapped_column(default=1)
    sender_id: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="queued")
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    next_attempt_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    claimed_at: so.Mapped[dt.datetime | None]
    # The drain that claimed a ``sending`` row and until when its claim holds: the drain
    # renews the lease while it works, and only an expired lease may be recovered.
    claimed_by: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    lease_until: so.Mapped[dt.datetime | None]
    sent_at: so.Mapped[dt.datetime | None]
    final_at: so.Mapped[dt.datetime | None]
    gateway_message_id: so.Mapped[str | None] = so.mapped_column(sa.String(80), index=True)
    cost: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(10, 4))
    cost_currency: so.Mapped[str | None] = so.mapped_column(sa.String(3))
    last_error: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    contact: so.Mapped[Contact | None] = so.relationship()


class DeliveryReport(Base):
    """A delivery report from the gateway, kept as received (every one, in any order)."""

    __tablename__ = "delivery_report"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    gateway_message_id: so.Mapped[str] = so.mapped_column(sa.String(80), index=True)
    status: so.Mapped[str] = so.mapped_column(sa.String(20))
    phone: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    network_code: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    failure_reason: so.Mapped[str | None] = so.mapped_column(sa.String(80))
    retry_count: so.Mapped[int | None]
    outbound_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("outbound_message.id"))
    received_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)


class UssdSession(Base):
    """A USSD session: its inputs so far, the half-entered answers, and how it ended."""

    __tablename__ = "ussd_session"
    PRICES_VIEWED: ClassVar[str] = "prices_viewed"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    session_id: so.Mapped[str] = so.mapped_column(sa.String(80), unique=True)
    phone: so.Mapped[str] = so.mapped_column(sa.String(16), index=True)
    service_code: so.Mapped[str] = so.mapped_column(sa.String(32), default="")
    network_code: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    contact_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("contact.id"))
    last_text: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    hops: so.Mapped[int] = so.mapped_column(default=0)
    # Answers entered so far and effects already applied (keyed by step), so a
    # repeated request never applies an effect twice and a dropped session can resume;
    # and, under PRICES_VIEWED, the codes of the commodities whose price it showed (read
    # by the analytics: a sale soon after a look-up is an informed sale).
    state: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)
    status: so.Mapped[str] = so.mapped_column(sa.String(12), default="active")
    started_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    ended_at: so.Mapped[dt.datetime | None]
    end_input: so.Mapped[str | None] = so.mapped_column(sa.Text)
    duration_ms: so.Mapped[int | None]
    error_message: so.Mapped[str | None] = so.mapped_column(sa.Text)
    cost: so.Mapped[str | None] = so.mapped_column(sa.String(32))


class BulletinRun(Base):
    """A claimed bulletin run; the unique key stops a second scheduler doing it again."""

    __tablename__ = "bulletin_run"
    __table_args__ = (
        sa.UniqueConstraint("kind", "market_id", "run_date"),
        sa.CheckConstraint("kind IN ('daily', 'weekly')", name="kind_known"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(8))
    market_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("market.id"))
    run_date: so.Mapped[dt.date]
    started_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    finished_at: so.Mapped[dt.datetime | None]
    messages: so.Mapped[int] = so.mapped_column(default=0)

    market: so.Mapped[Market] = so.relationship()


class GroupMessage(Base):
    """A group leader's SMS to the group's members: the text once, one outbox row per member.

    One per inbound SMS (the unique ``inbound_id``), and counted per group and day for the
    daily cap, so a leader's phone cannot be turned into a pump.
    """

    __tablename__ = "group_message"
    __table_args__ = (sa.Index("ix_group_message_group_created", "group_id", "created_at"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    group_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("producer_group.id", ondelete="CASCADE"))
    sender_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("contact.id"))
    inbound_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("inbound_message.id"), unique=True)
    # The leader's words as members read them (personal data: emptied when the leader is forgotten).
    body: so.Mapped[str] = so.mapped_column(sa.Text)
    recipients: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)


class RuntimeState(Base):
    """Small facts that processes share through the database, one row per name.

    ``scheduler``: the scheduler's heartbeat (``updated_at``); ``gateway_pause``: the
    gateway refused every message (bad key, no credit) and the drains wait for a fix.
    """

    __tablename__ = "runtime_state"

    name: so.Mapped[str] = so.mapped_column(sa.String(40), primary_key=True)
    value: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)
    updated_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)


class ReportCache(Base):
    """A computed report, kept until the data it was computed from changes."""

    __tablename__ = "report_cache"

    key: so.Mapped[str] = so.mapped_column(sa.String(80), primary_key=True)
    # What the data looked like (counts and latest ids): another value means recompute.
    fingerprint: so.Mapped[str] = so.mapped_column(sa.String(400))
    body: so.Mapped[str] = so.mapped_column(sa.Text)
    computed_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
