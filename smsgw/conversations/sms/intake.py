"""Inbound SMS: store it first, then answer it; a bug in a handler loses nothing.

AT retries a callback that does not get a quick 200 for about ten minutes, so the same
``id`` arrives many times: the message is stored once (unique gateway id) and committed
before anything reads it. Handling (parse, command, reply queued under
``reply:<inbound id>``) is a second transaction: if it raises, it is rolled back, the
message is marked ``error`` with a one-line reason, the farmer gets a short apology
(``apology:<inbound id>``) and AT gets its 200. An operator retries it later
(``retry_inbound``), exactly once.
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

from smsgw.config import allowed_prefixes
from smsgw.conversations.sms import caps
from smsgw.conversations.sms.commands import Reply
from smsgw.conversations.sms.parser import Parsed, load_vocabulary, parse
from smsgw.conversations.sms.router import dispatch
from smsgw.db import rowcount, utcnow
from smsgw.i18n import N_, Text
from smsgw.messaging import outbox
from smsgw.messaging.encoding import normalize
from smsgw.models import Contact, InboundMessage
from smsgw.phones import InvalidPhone, is_mobile, mask_phone, normalize_phone
from smsgw.services.contacts import find_contact

log = logging.getLogger(__name__)
SMS_CHARS = 160  # one GSM-7 segment
# Texts that machines send (delivery notices, auto-replies); answering them starts loops.
_AUTOMATED = re.compile(
    r"^(auto[- ]?reply|automatic reply|out of office|delivery (report|notification)|your balance|"
    r"message (delivered|sent)|this is an automated|do not reply|r[ée]ponse automatique)",
    re.IGNORECASE,
)


def _allowed(phone: str, settings: Mapping[str, Any]) -> bool:
    """A number we answer: a mobile (never premium-rate) within SMSGW_ALLOWED_PREFIXES."""
    prefixes = allowed_prefixes(settings)
    return is_mobile(phone) and (not prefixes or phone.startswith(prefixes))


def may_reply(session: so.Session, phone: str, known: bool, command: str, settings: Mapping[str, Any]) -> bool:
    """Whether no cap holds a reply back (see ``caps.refusal``)."""
    return caps.refusal(session, phone, known, command, settings) is None


# The farmer's side of a handler bug: the message is kept and someone will look at it.
APOLOGY = N_("Sorry, we could not handle your message. We will look at it; please try again later.")
# A message still "received" this long after it arrived was being handled by a process
# that died between the two transactions: an operator may retry it like an error.
STUCK_AFTER = dt.timedelta(minutes=10)
ERROR_WIDTH = 300


def receive(session: so.Session, settings: Mapping[str, Any], fields: Mapping[str, str]) -> InboundMessage | None:
    """Store an inbound SMS (committed), then answer it; None when it was a repeat or unusable.

    Raises only when storing fails (the database is down): the webhook then answers an
    error and AT sends the message again. Any error after the commit is recorded on
    the message instead, so the caller can acknowledge it.
    """
    message = _store(session, settings, fields)
    if message is None:
        return None
    session.commit()  # from here on the message is safe, whatever its handling does
    _handle_safely(session, settings, message.id, message.from_phone, ("received",))
    return message


def retry_inbound(session: so.Session, settings: Mapping[str, Any], inbound_id: int) -> str | None:
    """Handle an ``error`` (or stuck ``received``) message again; its new status, or None.

    None when there is nothing to retry (unknown id, already handled, or another retry
    got there first): the claim is a conditional update, so it runs once. Commits.
    """
    message = session.get(InboundMessage, inbound_id, populate_existing=True)
    if message is None:
        return None
    statuses = ["error"]
    if message.received_at < utcnow() - STUCK_AFTER:
        statuses.append("received")
    if message.status not in statuses:
        return None
    try:
        normalize_phone(message.from_phone, settings["SMSGW_DEFAULT_REGION"])
    except InvalidPhone:
        return None  # the sender was forgotten on request: nobody to answer
    if not _handle_safely(session, settings, inbound_id, message.from_phone, tuple(statuses)):
        return None
    return session.scalar(sa.select(InboundMessage.status).where(InboundMessage.id == inbound_id))


# AT's ``date`` ("2026-12-04 10:15:02", UTC) or ISO 8601 with a zone or "Z"; fractions allowed.
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S")
_EARLIEST_SENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def parse_sent_at(value: str | None) -> dt.datetime | None:
    """When the farmer's phone sent the SMS (AT's ``date``), UTC aware; None when unreadable.

    AT documents ``date`` as UTC without a zone; an ISO value with an offset is converted.
    A malformed, absurd or far-future date is dropped, never the message with it.
    """
    text = (value or "").strip()[:40]
    if not text:
        return None
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        for layout in _DATE_FORMATS:
            try:
                parsed = dt.datetime.strptime(text.split(".")[0], layout)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    parsed = parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    # A phone clock can be wrong; a date from before the service or a day ahead is noise.
    if not _EARLIEST_SENT <= parsed <= utcnow() + dt.timedelta(days=1):
        return None
    return parsed


def _store(session: so.Session, settings: Mapping[str, Any], fields: Mapping[str, str]) -> InboundMessage | None:
    """Add the raw message (status ``received``); None for a repeat, no id, or a bad number."""
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
        sent_at=parse_sent_at(fields.get("date")),
        contact_id=contact.id if contact else None,
        status="received",
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None  # the same id committed by a concurrent retry
    return message


def _handle_safely(
    session: so.Session, settings: Mapping[str, Any], inbound_id: int, phone: str, statuses: tuple[str, ...]
) -> bool:
    """Handle the message in its own transaction; on an error, record it and apologise.

    False when the message was not in one of ``statuses`` (someone else handled it).
    """
    seen: dict[str, Parsed] = {}
    try:
        done = _handle(session, settings, inbound_id, statuses, seen)
        session.commit()
        return done
    except Exception as exc:
        # Only the handling is undone: the raw message was committed before it began.
        session.rollback()
        log.exception("inbound SMS %s from %s could not be handled", inbound_id, mask_phone(phone))
        try:
            done = _record_error(session, settings, inbound_id, statuses, exc, seen.get("parsed"))
            session.commit()
            return done
        except Exception:
            session.rollback()
            log.exception("inbound SMS %s: its error could not be recorded (its status is unchanged)", inbound_id)
            return False


def _handle(
    session: so.Session,
    settings: Mapping[str, Any],
    inbound_id: int,
    statuses: tuple[str, ...],
    seen: dict[str, Parsed],
) -> bool:
    """Claim the message (a conditional update, so it is handled once), run it, queue the reply."""
    claimed = rowcount(session.execute(
        sa.update(InboundMessage)
        .where(InboundMessage.id == inbound_id, InboundMessage.status.in_(statuses))
        .values(status="handled", error=None)
        .execution_options(synchronize_session=False)
    ))
    if not claimed:
        return False
    message = session.get(InboundMessage, inbound_id, populate_existing=True)
    assert message is not None
    phone, text = message.from_phone, message.text
    contact = find_contact(session, phone)
    if contact is not None and message.contact_id is None:
        message.contact_id = contact.id  # a retry: the sender has become a contact since
    parsed = seen["parsed"] = parse(text, load_vocabulary(session), settings["SMS_SHORTCODE_KEYWORDS"].split(","))
    message.command = parsed.command
    if not _allowed(phone, settings) or _AUTOMATED.match(text.strip()):
        log.info("no reply to %s: outside allowed prefixes or automated", mask_phone(phone))
        return True
    reply = dispatch(session, settings, message, contact, parsed)
    if reply is None:
        return True
    reason = caps.refusal(session, phone, contact is not None, parsed.command, settings)
    if reason is None:
        _queue(session, message, reply)
    else:
        caps.refuse(session, settings, message, reason, reply.lang)
    return True


def _record_error(
    session: so.Session,
    settings: Mapping[str, Any],
    inbound_id: int,
    statuses: tuple[str, ...],
    exc: Exception,
    parsed: Parsed | None,
) -> bool:
    """Mark the message ``error`` with a one-line reason and queue one apology (fresh transaction)."""
    message = session.get(InboundMessage, inbound_id, populate_existing=True, with_for_update=True)
    if message is None or message.status not in statuses:
        return False
    phone = message.from_phone
    # One line, no traceback (that is in the log); the sender's number masked.
    reason = " ".join(f"{type(exc).__name__}: {exc}".split()).replace(phone, mask_phone(phone))
    message.status = "error"
    message.error = reason[:ERROR_WIDTH]
    if parsed is not None:
        message.command = parsed.command
    contact = find_contact(session, phone)
    if _may_apologise(session, settings, message, contact, parsed):
        lang = _language(contact, parsed, settings)
        outbox.enqueue(
            session,
            to=phone,
            text=Text(lang)(APOLOGY),
            purpose="reply",
            key=f"apology:{message.id}",
            lang=lang,
            contact_id=contact.id if contact else None,
        )
    return True


def _may_apologise(
    session: so.Session,
    settings: Mapping[str, Any],
    message: InboundMessage,
    contact: Contact | None,
    parsed: Parsed | None,
) -> bool:
    """The apology obeys what a reply obeys: prefixes, no robots, consent, and the caps."""
    if not _allowed(message.from_phone, settings) or _AUTOMATED.match(message.text.strip()):
        return False
    if contact is not None and contact.opted_out:
        return False
    if parsed is not None and parsed.command == "stop":
        return False  # they asked for silence; an operator's retry applies the STOP and acknowledges it
    return may_reply(session, message.from_phone, contact is not None, "apology", settings)


def _language(contact: Contact | None, parsed: Parsed | None, settings: Mapping[str, Any]) -> str:
    """The language a reply would have used (the router's rule), for the apology."""
    if contact is not None and contact.language_chosen:
        return contact.language
    hint = parsed.lang_hint if parsed is not None else None
    return hint or (contact.language if contact else settings["SMSGW_DEFAULT_LANG"])


def _queue(session: so.Session, message: InboundMessage, reply: Reply) -> None:
    """The reply, with its note in the same SMS when both fit one, else in a second one."""
    text, note = reply.text, reply.note
    if note and len(normalize(f"{text}\n{note}", reply.lang)) <= SMS_CHARS:
        text, note = f"{text}\n{note}", None
    outbox.enqueue(
        session,
        to=message.from_phone,
        text=text,
        purpose="reply",
        key=f"reply:{message.id}",
        lang=reply.lang,
        contact_id=message.contact_id,
    )
    if note:
        outbox.enqueue(
            session, to=message.from_phone, text=note, purpose="reply", key=f"note:{message.id}",
            lang=reply.lang, contact_id=message.contact_id,
        )
