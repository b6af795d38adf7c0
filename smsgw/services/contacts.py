"""Contacts: find or create the person behind a phone number, their language and consent."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.models import Contact, Membership


def find_contact(session: so.Session, phone: str) -> Contact | None:
    """The contact with this E.164 number, if any."""
    return session.scalar(sa.select(Contact).where(Contact.phone == phone))


def get_or_create_contact(session: so.Session, phone: str, language: str) -> Contact:
    """The contact for ``phone``, created (with ``language``) on first contact."""
    contact = find_contact(session, phone)
    if contact is None:
        contact = Contact(phone=phone, language=language, consent="granted", consented_at=utcnow())
        session.add(contact)
        session.flush()
    return contact


def set_language(session: so.Session, contact: Contact, language: str) -> None:
    """Remember the contact's language choice."""
    contact.language = language
    contact.language_chosen = True
    session.flush()


def is_registered(contact: Contact | None) -> bool:
    """True once the contact has a name and a home market (needed to report and order)."""
    return bool(contact and contact.name and contact.home_market_id)


def register(session: so.Session, contact: Contact, name: str, home_market_id: int) -> None:
    """Record the name and home market a caller gave (not enrolment: services.enrolment)."""
    contact.name = name.strip()[:80]
    contact.home_market_id = home_market_id
    session.flush()


def leader_groups(session: so.Session, contact: Contact) -> list[int]:
    """Ids of the groups this contact leads."""
    return list(
        session.scalars(
            sa.select(Membership.group_id).where(
                Membership.contact_id == contact.id, Membership.role == "leader"
            )
        ).all()
    )


def opt_out(session: so.Session, contact: Contact) -> bool:
    """STOP: withdraw consent; True if it was not withdrawn already.

    Subscriptions are kept so that START brings the same alerts back; every sender
    checks consent before queuing anything but the STOP acknowledgement.
    """
    if contact.consent == "withdrawn":
        return False
    contact.consent = "withdrawn"
    contact.withdrawn_at = utcnow()
    session.flush()
    return True


def opt_in(session: so.Session, contact: Contact) -> bool:
    """START: consent again; True if the contact had opted out."""
    was_out = contact.consent == "withdrawn"
    contact.consent = "granted"
    contact.consented_at = utcnow()
    contact.withdrawn_at = None
    session.flush()
    return was_out
