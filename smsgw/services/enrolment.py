"""Enrolment: the day a farmer starts to get what the service gives, recorded once.

A farmer is enrolled by the first of: a price answer or a price alert (``prices``),
joining a producer group (``group``), an operator's assignment (``operator``) or a
rollout wave reaching its start date (``rollout``). Registering a name is not enrolment:
the analytics compare a farmer's sales before and after this day, and a farmer who only
registered to report sales has not been treated.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import rowcount, utcnow
from smsgw.models import Contact
from smsgw.models.people import ENROLMENT_SOURCES


def enrol(session: so.Session, contact: Contact, source: str, when: dt.datetime | None = None) -> bool:
    """Record the enrolment unless an earlier one is on record; True if it changed.

    An earlier ``when`` (an operator back-dating an assignment) replaces a later one: the
    farmer was treated from the first day they were reached.
    """
    if source not in ENROLMENT_SOURCES:
        raise ValueError(f"unknown enrolment source {source!r}")
    when = when or utcnow()
    if contact.enrolled_at is not None and _aware(contact.enrolled_at) <= when:
        return False
    contact.enrolled_at = when
    contact.enrolment_source = source
    session.flush()
    return True


def got_price(session: so.Session, contact: Contact | None, current: bool) -> None:
    """A price answer was shown: enrols the farmer when it was a current price (an old
    price, shown as old, tells them nothing they could sell on)."""
    if contact is not None and current:
        enrol(session, contact, "prices")


def enrol_many(session: so.Session, contact_ids: list[int], source: str, when: dt.datetime) -> int:
    """Enrol these contacts on ``when`` where none is enrolled earlier; how many changed."""
    if source not in ENROLMENT_SOURCES:
        raise ValueError(f"unknown enrolment source {source!r}")
    changed = 0
    for start in range(0, len(contact_ids), 500):
        result = session.execute(
            sa.update(Contact)
            .where(Contact.id.in_(contact_ids[start:start + 500]),
                   sa.or_(Contact.enrolled_at.is_(None), Contact.enrolled_at > when))
            .values(enrolled_at=when, enrolment_source=source)
            .execution_options(synchronize_session=False)
        )
        changed += rowcount(result)
    return changed


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
