"""Buyers' offers: posted by an operator, told to the leaders of groups that grow the crop.

A leader can then open a sell order against the offer; the order carries the buyer, the
grade and the offer price, and shows that price against the market's reference price.
"""

from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.i18n import Text
from smsgw.messaging import outbox
from smsgw.models import (
    Buyer,
    BuyOffer,
    Commodity,
    Contact,
    Grade,
    GroupCommodity,
    Market,
    Membership,
    ProducerGroup,
    Unit,
)
from smsgw.services import prices


class OfferError(ValueError):
    """An offer that cannot be posted; the message says why."""


def post_offer(
    session: so.Session,
    *,
    buyer: Buyer,
    commodity: Commodity,
    quantity: decimal.Decimal,
    unit: Unit,
    price: decimal.Decimal,
    delivery_place: str,
    window_start: dt.date,
    window_end: dt.date,
    grade: Grade | None = None,
) -> BuyOffer:
    """Store an open offer and queue an SMS to each leader of a group growing the crop."""
    if quantity <= 0 or price <= 0:
        raise OfferError("quantity and price must be above 0")
    if window_end < window_start:
        raise OfferError("the delivery window ends before it starts")
    if buyer.market is None:
        raise OfferError("the buyer has no market, so no currency")
    offer = BuyOffer(
        buyer_id=buyer.id,
        commodity_id=commodity.id,
        grade_id=grade.id if grade else None,
        quantity=quantity,
        unit_id=unit.id,
        price=price,
        currency=buyer.market.currency,
        delivery_place=delivery_place,
        window_start=window_start,
        window_end=window_end,
    )
    session.add(offer)
    session.flush()
    for leader in leaders_for(session, offer):
        t = Text(leader.language)
        outbox.enqueue(
            session,
            to=leader.phone,
            text=offer_sms(t, offer),
            purpose="alert",
            key=f"offer:{offer.id}:{leader.id}",
            lang=t.lang,
            contact_id=leader.id,
        )
    return offer


def leaders_for(session: so.Session, offer: BuyOffer) -> list[Contact]:
    """Leaders of groups that grow the offer's crop, in the buyer's country."""
    market = offer.buyer.market
    if market is None:  # post_offer refuses such a buyer: it has no currency either
        raise OfferError("the buyer has no market, so no currency")
    country = market.country
    query = (
        sa.select(Contact)
        .join(Membership, Membership.contact_id == Contact.id)
        .join(ProducerGroup, ProducerGroup.id == Membership.group_id)
        .join(GroupCommodity, GroupCommodity.group_id == ProducerGroup.id)
        .join(Market, Market.id == ProducerGroup.market_id)
        .where(
            Membership.role == "leader",
            GroupCommodity.commodity_id == offer.commodity_id,
            Market.country == country,
            Contact.consent != "withdrawn",
        )
        .distinct()
        .order_by(Contact.id)
    )
    return list(session.scalars(query).all())


def open_offers_for(session: so.Session, contact: Contact, today: dt.date) -> list[BuyOffer]:
    """Open offers for crops the contact's led groups grow, best price first."""
    crops = (
        sa.select(GroupCommodity.commodity_id)
        .join(Membership, Membership.group_id == GroupCommodity.group_id)
        .where(Membership.contact_id == contact.id, Membership.role == "leader")
    )
    query = (
        sa.select(BuyOffer)
        .where(
            BuyOffer.status == "open",
            BuyOffer.window_end >= today,
            BuyOffer.commodity_id.in_(crops),
        )
        .order_by(BuyOffer.price.desc(), BuyOffer.id)
    )
    return list(session.scalars(query).all())


def reference_for(
    session: so.Session, offer: BuyOffer, market: Market, today: dt.date
) -> decimal.Decimal | None:
    """The market's latest approved price, per the offer's unit, to set the offer against."""
    found = prices.price_on_or_before(session, offer.commodity, market, today)
    if found is None:
        return None
    return (found[1] * offer.unit.factor).quantize(decimal.Decimal("0.01"))


def offer_sms(t: Text, offer: BuyOffer) -> str:
    """The leaders' SMS about a new offer."""
    grade = f" {offer.grade.code}" if offer.grade else ""
    return t(
        "Offer %(id)s: %(buyer)s buys %(qty)s %(unit)s %(crop)s%(grade)s at %(price)s, until %(date)s. Open a group "
        "order in the USSD leader menu.",
        id=offer.id,
        buyer=offer.buyer.name,
        qty=t.number(offer.quantity),
        unit=offer.unit.label(t.lang),
        crop=offer.commodity.short(t.lang),
        grade=grade,
        price=t.money(offer.price, offer.currency),
        date=t.date(offer.window_end),
    )
