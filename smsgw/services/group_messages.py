"""A group leader's message to the members: "the truck comes Thursday at 8", by one SMS.

The text is stored once (``GroupMessage``) and queued for every other member who has not
opted out, in the same transaction. It must fit one SMS for every member (each member's
copy is paid for), and a group gets at most ``cap`` messages a day, so a leader's phone,
or a stolen one, cannot be turned into a pump.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.messaging.encoding import encode_for_sms
from smsgw.messaging.outbox import enqueue
from smsgw.models import Contact, GroupMessage, InboundMessage, Membership, ProducerGroup
from smsgw.services.orders import led_groups

GSM7_SEGMENT, UCS2_SEGMENT = 160, 70


class GroupMessageError(Exception):
    """A leader's message refused; ``code`` says why, ``limit`` the number that applies."""

    def __init__(self, code: str, limit: int = 0) -> None:
        super().__init__(code)
        self.code = code
        self.limit = limit


@dataclass(frozen=True)
class Sent:
    """A group message queued: to which group and how many members."""

    group: ProducerGroup
    recipients: int


def members_text(group: ProducerGroup, body: str) -> str:
    """What each member reads: the group's name, then the leader's words."""
    return f"{group.name}: {body}"


def send_to_group(
    session: so.Session, leader: Contact, body: str, inbound: InboundMessage, *, cap: int, now: dt.datetime,
) -> Sent:
    """Queue ``body`` for every other member of the leader's (first) group."""
    groups = led_groups(session, leader)
    if not groups:
        raise GroupMessageError("not_leader")
    group = groups[0]
    body = " ".join(body.split())
    if not body:
        raise GroupMessageError("empty")
    members = session.scalars(
        sa.select(Contact).join(Membership)
        .where(Membership.group_id == group.id, Contact.id != leader.id, Contact.consent != "withdrawn")
        .order_by(Contact.id)
    ).all()
    text = members_text(group, body)
    for lang in {leader.language, *(member.language for member in members)}:
        encoded = encode_for_sms(text, lang)
        if encoded.segments > 1:
            room = (GSM7_SEGMENT if encoded.encoding == "gsm7" else UCS2_SEGMENT) - len(members_text(group, ""))
            raise GroupMessageError("too_long", room)
    zone = ZoneInfo(group.market.timezone if group.market else "UTC")
    local = now.astimezone(zone)
    day_start = dt.datetime.combine(local.date(), dt.time(), tzinfo=zone)
    sent_today = session.scalar(
        sa.select(sa.func.count(GroupMessage.id))
        .where(GroupMessage.group_id == group.id, GroupMessage.created_at >= day_start)
    ) or 0
    if sent_today >= cap:
        raise GroupMessageError("cap", cap)
    message = GroupMessage(group_id=group.id, sender_id=leader.id, inbound_id=inbound.id, body=body,
                           recipients=len(members), created_at=now)
    session.add(message)
    session.flush()
    for member in members:
        enqueue(session, to=member.phone, text=text, purpose="alert", key=f"group:{message.id}:{member.id}",
                lang=member.language, contact_id=member.id)
    return Sent(group, len(members))
