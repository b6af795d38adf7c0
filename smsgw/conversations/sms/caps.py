"""Reply caps, and the one notice that tells a capped farmer when answers resume.

The caps keep a loop or an SMS-pumping attack from costing us money. A farmer who hits
one is not left guessing: the first refused request of a window gets one short notice
saying when answers resume (never for the global cap, whose cause is an attack, nor for
unreadable text). Every refused request is marked on the inbound message, so an
operator sees on the messages page why it went unanswered.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.i18n import N_, Text
from smsgw.messaging import outbox
from smsgw.models import InboundMessage, OutboundMessage

NOTICE_KEY = "notice:"  # idempotency key prefix of cap notices (purpose "reply")
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
# Why a reply was held back, as the operator reads it next to the message.
REASONS = {
    "hour": "not answered: this number's hourly reply cap",
    "global": "not answered: global hourly reply cap",
    "day": "not answered: daily cap for unregistered numbers",
    "unreadable": "not answered: too many unreadable messages today",
}
NOTICES = {
    "hour": N_("You have had %(count)s answers this hour, our limit. We answer again after %(time)s."),
    "day": N_(
        "This number has had %(count)s answers today, our limit for new numbers. We answer again after %(time)s."
    ),
}


def _answers(session: so.Session, phone: str | None, since: dt.datetime) -> sa.Select:
    """Replies since ``since`` (to ``phone``, or to anyone); a per-number count leaves notices out."""
    query = sa.select(OutboundMessage.created_at).where(
        OutboundMessage.purpose == "reply", OutboundMessage.created_at >= since
    )
    if phone is not None:
        query = query.where(
            OutboundMessage.to_phone == phone, ~OutboundMessage.idempotency_key.startswith(NOTICE_KEY)
        )
    return query


def _count(session: so.Session, query: sa.Select) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


def refusal(session: so.Session, phone: str, known: bool, command: str, settings: Mapping[str, Any]) -> str | None:
    """Which cap holds this reply back (a key of REASONS), or None when it may be sent."""
    now = utcnow()
    if _count(session, _answers(session, phone, now - HOUR)) >= int(settings["SMS_REPLIES_PER_HOUR"]):
        return "hour"
    if _count(session, _answers(session, None, now - HOUR)) >= int(settings["SMS_GLOBAL_REPLIES_PER_HOUR"]):
        return "global"
    if command == "stop":
        # The opt-out always takes effect; only the hourly caps hold its acknowledgement
        # back (a number alternating STOP and START would otherwise get an SMS each time).
        return None
    if not known and _count(session, _answers(session, phone, now - DAY)) >= int(settings["SMS_UNKNOWN_DAILY_CAP"]):
        return "day"
    if command in ("unknown", "empty"):
        # Someone who keeps sending text we cannot read gets the help line a few times only.
        unanswered = session.scalar(
            sa.select(sa.func.count(InboundMessage.id)).where(
                InboundMessage.from_phone == phone,
                InboundMessage.command.in_(("unknown", "empty")),
                InboundMessage.received_at >= now - DAY,
            )
        ) or 0
        if unanswered > int(settings["SMS_UNKNOWN_REPLIES"]):
            return "unreadable"
    return None


def refuse(
    session: so.Session, settings: Mapping[str, Any], message: InboundMessage, reason: str, lang: str,
) -> None:
    """Mark ``message`` unanswered for ``reason``; queue the window's one notice if due."""
    message.error = REASONS[reason]
    if reason not in NOTICES:
        return
    now = utcnow()
    window = HOUR if reason == "hour" else DAY
    phone = message.from_phone
    already = session.scalar(
        sa.select(OutboundMessage.id).where(
            OutboundMessage.to_phone == phone,
            OutboundMessage.idempotency_key.startswith(NOTICE_KEY),
            OutboundMessage.created_at >= now - window,
        ).limit(1)
    )
    if already is not None:
        return  # one notice per window: the rest are only recorded
    if _count(session, _answers(session, None, now - HOUR)) >= int(settings["SMS_GLOBAL_REPLIES_PER_HOUR"]):
        return
    times = session.scalars(_answers(session, phone, now - window).order_by(OutboundMessage.created_at)).all()
    resume = (times[0] if times else now) + window
    t = Text(lang)
    outbox.enqueue(
        session,
        to=phone,
        text=t(NOTICES[reason], count=len(times), time=_when(t, resume, now, settings)),
        purpose="reply",
        key=f"{NOTICE_KEY}{message.id}",
        lang=lang,
        contact_id=message.contact_id,
    )
    message.error += "; notice sent"


def _when(t: Text, moment: dt.datetime, now: dt.datetime, settings: Mapping[str, Any]) -> str:
    """``14:05``, or ``14:05 5 Dec`` when that is not today, in the service's zone."""
    zone = ZoneInfo(settings["SMSGW_TIMEZONE"])
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    return clock if local.date() == today else f"{clock} {t.date(local.date())}"
