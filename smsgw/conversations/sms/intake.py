"""Inbound SMS: store once per gateway id, decide whether to answer, queue the reply.

AT retries a callback that does not get a quick 200 for about ten minutes, so the same
``id`` arrives many times: the message is stored once (unique gateway id), and the
reply is queued under ``reply:<inbound id>`` in the same transaction, so it goes once.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.exc import IntegrityError

from smsgw.conversations.sms import order_commands  # noqa: F401  (registers order keywords)
from smsgw.conversations.sms.commands import Reply, dispatch
from smsgw.conversations.sms.parser import load_vocabulary, parse
from smsgw.db import utcnow
from smsgw.messaging import outbox
from smsgw.models import InboundMessage, OutboundMessage
from smsgw.phones import InvalidPhone, mask_phone, normalize_phone
from smsgw.services.contacts import find_contact

log = logging.getLogger(__name__)
# Texts that machines send (delivery notices, auto-replies); answering them starts loops.
_AUTOMATED = re.compile(
    r"^(auto[- ]?reply|automatic reply|out of office|delivery (report|notification)|your balance|"
    r"message (delivered|sent)|this is an automated|do not reply|r[ée]ponse automatique)",
    re.IGNORECASE,
)


def _allowed(phone: str, settings: Mapping[str, Any]) -> bool:
    prefixes = [p.strip() for p in str(settings["SMSGW_ALLOWED_PREFIXES"]).split(",") if p.strip()]
    return not prefixes or any(phone.startswith(prefix) for prefix in prefixes)


def _replies_since(session: so.Session, phone: str, since: dt.datetime) -> int:
    return session.scalar(
        sa.select(sa.func.count(OutboundMessage.id)).where(
            OutboundMessage.to_phone == phone,
            OutboundMessage.purpose == "reply",
            OutboundMessage.created_at >= since,
        )
    )


def _all_replies_since(session: so.Session, since: dt.datetime) -> int:
    return session.scalar(
        sa.select(sa.func.count(OutboundMessage.id)).where(
            OutboundMessage.purpose == "reply", OutboundMessage.created_at >= since
        )
    )


def may_reply(session: so.Session, phone: str, known: bool, command: str, settings: Mapping[str, Any]) -> bool:
    """Caps that keep a loop or an SMS-pumping attack from costing us money."""
    now = utcnow()
    if _replies_since(session, phone, now - dt.timedelta(hours=1)) >= int(settings["SMS_REPLIES_PER_HOUR"]):
        return False
    if _all_replies_since(session, now - dt.timedelta(hours=1)) >= int(settings["SMS_GLOBAL_REPLIES_PER_HOUR"]):
        return False
    if command == "stop":
        # The opt-out always takes effect; only the hourly caps hold its acknowledgement
        # back (a number alternating STOP and START would otherwise get an SMS each time).
        return True
    if not known and _replies_since(session, phone, now - dt.timedelta(days=1)) >= int(settings["SMS_UNKNOWN_DAILY_CAP"]):
        return False
    if command in ("unknown", "empty"):
        # Someone who keeps sending text we cannot read gets the help line a few times only.
        unanswered = session.scalar(
            sa.select(sa.func.count(InboundMessage.id)).where(
                InboundMessage.from_phone == phone,
                InboundMessage.command.in_(("unknown", "empty")),
                InboundMessage.received_at >= now - dt.timedelta(days=1),
            )
        )
        return unanswered <= int(settings["SMS_UNKNOWN_REPLIES"])
    return True


def receive(session: so.Session, settings: Mapping[str, Any], fields: Mapping[str, str]) -> InboundMessage | None:
    """Store an inbound SMS and queue its reply; None when it was a repeat or unusable."""
    gateway_id = (fields.get("id") or "").strip()[:80]
    try:
        phone = normalize_phone(fields.get("from", ""), settings["SMSGW_DEFAULT_REGION"])
    except InvalidPhone:
        log.warning("inbound SMS from an invalid number ignored (id=%s)", gateway_id)
        return None
    if not gateway_id:
        return None
    if session.scalar(sa.select(InboundMessage.id).where(InboundMessage.gateway_id == gateway_id)):
        return None
    text = "".join(ch for ch in (fields.get("text") or "") if ch.isprintable() or ch in "\n\t")[:1000]
    contact = find_contact(session, phone)
    message = InboundMessage(
        gateway_id=gateway_id,
        from_phone=phone,
        to=(fields.get("to") or "")[:32],
        text=text,
        link_id=(fields.get("linkId") or "")[:80] or None,
        network_code=(fields.get("networkCode") or "")[:16] or None,
        contact_id=contact.id if contact else None,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None  # the same id committed by a concurrent retry
    parsed = parse(text, load_vocabulary(session), settings["SMS_SHORTCODE_KEYWORDS"].split(","))
    message.command = parsed.command
    if not _allowed(phone, settings) or _AUTOMATED.match(text.strip()):
        log.info("no reply to %s: outside allowed prefixes or automated", mask_phone(phone))
        return message
    reply = dispatch(session, settings, message, contact, parsed)
    if reply is not None and may_reply(session, phone, contact is not None, parsed.command, settings):
        _queue(session, message, reply)
    return message


def _queue(session: so.Session, message: InboundMessage, reply: Reply) -> None:
    outbox.enqueue(
        session,
        to=message.from_phone,
        text=reply.text,
        purpose="reply",
        key=f"reply:{message.id}",
        lang=reply.lang,
        contact_id=message.contact_id,
    )
