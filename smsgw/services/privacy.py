"""The right to be forgotten: a person's number, name and words removed, the statistics kept.

``forget_contact`` anonymises the contact rather than deleting it: sale reports, group
orders and commitments stay linked to the same row, so prices, totals and the
bargaining-position analytics do not change, but nothing left can be traced back to
the person. The phone becomes ``+000`` and the contact id (never routable, and unique,
so the ``phone LIKE '+%'`` check and the unique index still hold); name and village are
emptied; consent is withdrawn (the drain refuses anything still addressed to them);
alerts and group memberships are removed; every SMS they sent or were sent loses its
number and text, their USSD sessions lose the number, what they typed and the
half-entered answers, and delivery reports lose the number. A leader's messages to the
group lose their words, in the stored message and in every member's copy. Audit entries
about them keep the fact of a change but not the values. The caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import rowcount, utcnow
from smsgw.models import (
    AuditEntry,
    DeliveryReport,
    GroupMessage,
    InboundMessage,
    Membership,
    OutboundMessage,
    PriceReporter,
    Subscription,
    UssdSession,
)
from smsgw.phones import mask_phone
from smsgw.services.contacts import find_contact

# For messages from a number that never became a contact (an unknown sender).
NO_CONTACT = "+000"
PERSONAL_KEYS = {"phone": None, "name": "", "village": ""}
FORGOTTEN = "forgotten on request"


def placeholder_phone(contact_id: int) -> str:
    """The non-routable number that replaces a forgotten contact's."""
    return f"+000{contact_id:012d}"


@dataclass
class Forgotten:
    """What ``forget_contact`` changed."""

    contact_id: int | None
    placeholder: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        """True when anything was stored under the number."""
        return self.contact_id is not None or any(self.counts.values())


def forget_contact(session: so.Session, phone: str, *, actor: str = "cli", user_id: int | None = None) -> Forgotten:
    """Anonymise the contact with this E.164 number and scrub every message of it."""
    session.flush()
    contact = find_contact(session, phone)
    cid = contact.id if contact else None
    placeholder = placeholder_phone(cid) if cid is not None else NO_CONTACT
    now = utcnow()

    def mine(phone_column: Any, contact_column: Any) -> sa.ColumnElement[bool]:
        return sa.or_(phone_column == phone, contact_column == cid) if cid is not None else phone_column == phone

    counts: dict[str, int] = {}
    theirs = mine(OutboundMessage.to_phone, OutboundMessage.contact_id)
    outbound_ids = sa.select(OutboundMessage.id).where(theirs).scalar_subquery()
    counts["delivery_reports"] = _update(
        session,
        DeliveryReport,
        sa.or_(DeliveryReport.phone == phone, DeliveryReport.outbound_id.in_(outbound_ids)),
        phone=None,
    )
    # Not yet sent: never sent now (with an empty text and no number there is nothing to send).
    counts["cancelled"] = _update(
        session,
        OutboundMessage,
        sa.and_(theirs, OutboundMessage.status == "queued"),
        status="failed",
        final_at=now,
        last_error=FORGOTTEN,
    )
    counts["outbound"] = _update(session, OutboundMessage, theirs, to_phone=placeholder, text="")
    counts["inbound"] = _update(
        session,
        InboundMessage,
        mine(InboundMessage.from_phone, InboundMessage.contact_id),
        from_phone=placeholder,
        text="",
        link_id=None,
        error=None,
    )
    counts["ussd_sessions"] = _update(
        session, UssdSession, mine(UssdSession.phone, UssdSession.contact_id),
        phone=placeholder, state={}, last_text="", end_input=None, error_message=None,
    )
    if contact is not None:
        # The members' copies of what they said to the group, keyed group:<message>:<member>.
        copies = sa.and_(OutboundMessage.purpose == "alert", sa.exists().where(
            GroupMessage.sender_id == cid,
            OutboundMessage.idempotency_key.like(sa.literal("group:") + sa.cast(GroupMessage.id, sa.String) + ":%"),
        ))
        _update(session, OutboundMessage, sa.and_(copies, OutboundMessage.status == "queued"),
                status="failed", final_at=now, last_error=FORGOTTEN)
        _update(session, OutboundMessage, copies, text="")
        counts["group_messages"] = _update(session, GroupMessage, GroupMessage.sender_id == cid, body="")
        counts["subscriptions"] = rowcount(
            session.execute(sa.delete(Subscription).where(Subscription.contact_id == cid))
        )
        counts["memberships"] = rowcount(session.execute(sa.delete(Membership).where(Membership.contact_id == cid)))
        # Their published prices stay; they report no more.
        _update(session, PriceReporter, PriceReporter.contact_id == cid, active=False)
    session.expire_all()  # the bulk statements above bypassed the objects in the session
    if contact is not None and cid is not None:
        name = contact.name
        contact.phone, contact.name, contact.village = placeholder, "", ""
        contact.consent, contact.withdrawn_at = "withdrawn", now
        counts["audit_entries"] = _scrub_audit(session, cid, phone, placeholder, name)
    result = Forgotten(cid, placeholder, counts)
    if result.found:
        session.add(AuditEntry(
            user_id=user_id, actor=actor[:80], action="forget", entity="contact",
            entity_id=None if cid is None else str(cid),
            before={"phone": mask_phone(phone)}, after={"phone": placeholder, **counts},
        ))
    session.flush()
    return result


def _update(session: so.Session, model: type, where: sa.ColumnElement[bool], **values: Any) -> int:
    return rowcount(
        session.execute(sa.update(model).where(where).values(**values).execution_options(synchronize_session=False))
    )


def _scrub_audit(session: so.Session, cid: int, phone: str, placeholder: str, name: str) -> int:
    """Remove the person's values from audit entries about them or quoting their number."""
    about = sa.and_(AuditEntry.entity == "contact", AuditEntry.entity_id == str(cid))
    quoting = sa.or_(
        sa.cast(AuditEntry.before, sa.Text).contains(phone), sa.cast(AuditEntry.after, sa.Text).contains(phone)
    )
    entries = session.scalars(sa.select(AuditEntry).where(sa.or_(about, quoting))).all()
    for entry in entries:
        entry.before = _scrub(entry.before, phone, placeholder, name)
        entry.after = _scrub(entry.after, phone, placeholder, name)
    return len(entries)


def _scrub(value: Any, phone: str, placeholder: str, name: str) -> Any:
    if isinstance(value, dict):
        return {
            key: (placeholder if PERSONAL_KEYS[key] is None else PERSONAL_KEYS[key])
            if key in PERSONAL_KEYS and item
            else _scrub(item, phone, placeholder, name)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_scrub(item, phone, placeholder, name) for item in value]
    if isinstance(value, str):
        value = value.replace(phone, placeholder)
        return value.replace(name, "") if name and len(name) >= 3 else value
    return value
