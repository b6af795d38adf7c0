"""Daily price alerts: subscribe, unsubscribe, list."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import rowcount, utcnow
from smsgw.models import Commodity, Contact, Market, Subscription
from smsgw.services import enrolment

# The alerts one daily bulletin carries (services.bulletin_texts.MAX_ITEMS, checked by
# a test): an alert beyond them would never be sent, so it is refused, not confirmed.
MAX_ALERTS = 3


def add_alert(session: so.Session, contact: Contact, commodity: Commodity, market: Market) -> str:
    """Subscribe within MAX_ALERTS: ``"added"``, ``"exists"`` or ``"full"`` (nothing changed)."""
    exists = session.scalar(
        sa.select(Subscription.id).where(
            Subscription.contact_id == contact.id,
            Subscription.commodity_id == commodity.id,
            Subscription.market_id == market.id,
        )
    )
    if exists is None and len(list_for(session, contact)) >= MAX_ALERTS:
        return "full"
    return "added" if subscribe(session, contact, commodity, market) else "exists"


def subscribe(session: so.Session, contact: Contact, commodity: Commodity, market: Market) -> bool:
    """Subscribe; True if new, False if it already existed. Subscribing is consent, and
    enrolment: the farmer gets prices from the next morning on."""
    if contact.consent != "granted":
        contact.consent = "granted"
        contact.consented_at = utcnow()
        contact.withdrawn_at = None
    exists = session.scalar(
        sa.select(Subscription.id).where(
            Subscription.contact_id == contact.id,
            Subscription.commodity_id == commodity.id,
            Subscription.market_id == market.id,
        )
    )
    if exists:
        return False
    session.add(Subscription(contact_id=contact.id, commodity_id=commodity.id, market_id=market.id))
    session.flush()
    enrolment.enrol(session, contact, "prices")
    return True


def unsubscribe(session: so.Session, subscription_id: int, contact: Contact) -> bool:
    """Remove one of the contact's subscriptions; False if it was not theirs or gone."""
    removed = rowcount(session.execute(
        sa.delete(Subscription).where(
            Subscription.id == subscription_id, Subscription.contact_id == contact.id
        )
    ))
    return bool(removed)


def unsubscribe_commodity(session: so.Session, contact: Contact, commodity: Commodity) -> int:
    """Remove every alert of the contact for ``commodity`` (any market); returns how many."""
    return rowcount(session.execute(
        sa.delete(Subscription).where(Subscription.contact_id == contact.id, Subscription.commodity_id == commodity.id)
    ))


def list_for(session: so.Session, contact: Contact) -> list[Subscription]:
    """The contact's subscriptions, oldest first."""
    return list(
        session.scalars(
            sa.select(Subscription)
            .where(Subscription.contact_id == contact.id)
            .order_by(Subscription.id)
        ).all()
    )
