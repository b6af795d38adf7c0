"""Delivery reports from Africa's Talking: every one kept as received, applied forward only.

Reports arrive late, twice, and out of order (a ``Buffered`` after the ``Success``), so
each is stored and may only move its message towards an end: a ``Sent`` never reopens
a delivered or failed message, and a failure never undoes a delivery. AT's ``Success``
is authoritative, so it wins even over an earlier failure report.

A report's number must be the message's recipient: the webhook token is the only other
guard, and a report that names another number (forged, or for someone else) is kept
for the record but changes nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.models import DeliveryReport, OutboundMessage
from smsgw.phones import InvalidPhone, country_of_prefix, mask_phone, normalize_phone

log = logging.getLogger(__name__)

DELIVERED = frozenset({"success"})
IN_FLIGHT = frozenset({"sent", "submitted", "buffered"})
FAILED = frozenset({"rejected", "failed", "expired", "absentsubscriber"})
# States an in-flight report may move to "sent"; the others are ends.
MAY_BECOME_SENT = frozenset({"queued", "sending", "sent", "unknown"})


def record_delivery_report(session: so.Session, fields: Mapping[str, str]) -> DeliveryReport | None:
    """Store one report and apply it; None when it has no id or matches no message.

    A report whose ``phoneNumber`` is not the message's recipient matches no message:
    it is stored unlinked and changes nothing.

    Never raises on bad fields: AT repeats a callback that errors, and a malformed one
    would fail the same way every time. The caller commits.
    """
    gateway_id = _text(fields, "id", 80)
    if not gateway_id:
        log.info("delivery report without an id ignored")
        return None
    status = _text(fields, "status", 20)
    report = DeliveryReport(
        gateway_message_id=gateway_id,
        status=status,
        phone=_text(fields, "phoneNumber", 16) or None,
        network_code=_text(fields, "networkCode", 16) or None,
        failure_reason=_text(fields, "failureReason", 80) or None,
        retry_count=_number(fields.get("retryCount")),
    )
    # Lock the row: two reports for one message applied side by side could each
    # read the old state and the weaker one could win.
    message = session.scalars(
        sa.select(OutboundMessage)
        .where(OutboundMessage.gateway_message_id == gateway_id)
        .order_by(OutboundMessage.id)
        .limit(1)
        .with_for_update()
    ).first()
    phone = mask_phone(report.phone or "")
    if message is not None and not _same_number(fields.get("phoneNumber"), message.to_phone):
        # Forged, or AT's id reused: kept unlinked, so the message's history stays true.
        log.warning("delivery report %s names %s, not the message's recipient: not applied", status, phone)
        message = None
    elif message is None:
        # Kept for the record; the drain may not have stored this id yet.
        log.info("delivery report %s for an unknown message (%s)", status, phone)
    report.outbound_id = message.id if message is not None else None
    session.add(report)
    if message is None:
        return None
    _apply(message, status.lower(), report.failure_reason or status)
    return report


def _apply(message: OutboundMessage, status: str, reason: str) -> None:
    """Move ``message`` forward for a report status (lower case); never backwards."""
    now = utcnow()
    if status in DELIVERED:
        if message.status != "delivered":
            message.status = "delivered"
            message.final_at = now
            message.last_error = ""
    elif status in IN_FLIGHT:
        if message.status in MAY_BECOME_SENT:
            message.status = "sent"
            message.sent_at = message.sent_at or now
    elif status in FAILED and message.status not in ("delivered", "failed"):
        message.status = "failed"
        message.final_at = now
        message.last_error = reason


def _same_number(raw: object, recipient: str | None) -> bool:
    """Whether a report's number is ``recipient``, normalised as inbound numbers are.

    A national-format number is read in the recipient's own country; a missing or
    invalid number never matches.
    """
    if not recipient or not isinstance(raw, str) or len(raw) > 64:
        return False
    try:
        return normalize_phone(raw, country_of_prefix(recipient) or "ZZ") == recipient
    except InvalidPhone:
        return False


def _text(fields: Mapping[str, str], key: str, width: int) -> str:
    value = fields.get(key)
    return "" if value is None else str(value).strip()[:width]


def _number(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    # The column is a 32-bit integer; anything outside is not a real retry count.
    return number if 0 <= number < 2**31 else None
