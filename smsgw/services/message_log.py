"""The message monitor's questions: which SMS match an operator's filters, and what the
gateway said about one. Plain queries for the admin (it only pages and shows them)."""
from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import like_pattern
from smsgw.models import DeliveryReport, InboundMessage, OutboundMessage

INBOUND_STATUSES = ("received", "handled", "error")


def phone_digits(text: str | None) -> str:
    """The digits an operator typed to find a number (any form: +254 7.., 07.., 2547..)."""
    return "".join(ch for ch in (text or "") if ch.isdigit()).lstrip("0")


def inbound_query(phone: str = "", status: str = "") -> sa.Select[InboundMessage]:
    """Inbound SMS whose number contains ``phone``'s digits and in ``status``, newest first.

    A status that is not an inbound one (an outbound state left in the URL) filters nothing.
    """
    query = sa.select(InboundMessage).options(so.joinedload(InboundMessage.contact))
    if digits := phone_digits(phone):
        query = query.where(InboundMessage.from_phone.like(like_pattern(digits), escape="\\"))
    if status in INBOUND_STATUSES:
        query = query.where(InboundMessage.status == status)
    return query.order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())


def outbound_query(phone: str = "", status: str = "", purpose: str = "",
                   reason: str = "") -> sa.Select[OutboundMessage]:
    """Outbound SMS by number, state, purpose and words of their last error, newest first."""
    query = sa.select(OutboundMessage).options(so.joinedload(OutboundMessage.contact))
    if status:
        query = query.where(OutboundMessage.status == status)
    if purpose:
        query = query.where(OutboundMessage.purpose == purpose)
    if digits := phone_digits(phone):
        query = query.where(OutboundMessage.to_phone.like(like_pattern(digits), escape="\\"))
    if reason:
        query = query.where(sa.func.lower(OutboundMessage.last_error).like(like_pattern(reason.lower()), escape="\\"))
    return query.order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())


def delivery_reports(session: so.Session, message_id: int) -> list[DeliveryReport]:
    """Every delivery report received for one outbound message, oldest first."""
    return list(session.scalars(
        sa.select(DeliveryReport).where(DeliveryReport.outbound_id == message_id).order_by(DeliveryReport.received_at)
    ))
