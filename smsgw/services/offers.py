"""Buyers' offers and suppliers' quotes: posted by SMS or on the admin, checked against the
market, told to the leaders of the groups near the delivery market, listed and withdrawn.

An offer (``kind`` ``buy``: a buyer buys produce) or a quote (``supply``: a supplier sells
inputs) is in its buyer's country and currency. A price far from the reference (the
delivery market's latest approved price; for inputs, recent input prices in the country)
keeps it ``pending`` until the buyer confirms it; an ``open`` one is told, once per group,
to the leaders of groups within ``OFFER_MATCH_KM`` of its delivery market that sell the
crop (for a quote: every group there). Orders taken against it reserve their quantity
(``smsgw.services.offer_matching``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import statistics
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.i18n import N_, Text
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
    PriceObservation,
    ProducerGroup,
    Unit,
)
from smsgw.services import prices
from smsgw.services.buyers import buyer_country, buyer_currency
from smsgw.services.quantities import quantity_phrase

# Defaults of the settings OFFER_MATCH_KM and OFFER_PRICE_BAND.
DEFAULT_MATCH_KM = 150.0
DEFAULT_PRICE_BAND = 0.3
INPUT_HISTORY_DAYS = 90
_CENTS = decimal.Decimal("0.01")


class OfferError(ValueError):
    """An offer that cannot be posted or changed; ``code`` says why, str(e) in English."""

    def __init__(self, reason: str, code: str = "bad_offer") -> None:
        super().__init__(reason)
        self.code = code


def match_km(settings: Mapping[str, Any] | None) -> float:
    """How far from an offer's delivery market groups hear of it (OFFER_MATCH_KM)."""
    return float((settings or {}).get("OFFER_MATCH_KM", DEFAULT_MATCH_KM))


def price_band(settings: Mapping[str, Any] | None) -> float:
    """How far (a fraction) a price may be from the reference before it must be confirmed."""
    return float((settings or {}).get("OFFER_PRICE_BAND", DEFAULT_PRICE_BAND))


def is_far(price: decimal.Decimal, reference: decimal.Decimal | None, band: float) -> bool:
    """Whether ``price`` lies more than ``band`` (0.3 = 30%) from ``reference``."""
    if reference is None or reference <= 0:
        return False
    return abs(price - reference) / reference > decimal.Decimal(str(band))


def reference_price(
    session: so.Session, commodity: Commodity, unit: Unit, market: Market | None, today: dt.date
) -> decimal.Decimal | None:
    """The price to set an offer or order against, per ``unit``; None when there is none.

    Produce: the market's latest approved wholesale price. Inputs: the market's latest
    approved price of any kind, else the median of the country's approved prices of the
    last 90 days (retail shops included), when there are any.
    """
    if market is None:
        return None
    found = prices.price_on_or_before(session, commodity, market, today)
    if found is None and commodity.kind == "input":
        for kind in ("retail", "farm_gate"):
            found = prices.price_on_or_before(session, commodity, market, today, kind)
            if found is not None:
                break
        if found is None:
            values = session.scalars(
                sa.select(PriceObservation.price_per_base)
                .join(Market, Market.id == PriceObservation.market_id)
                .where(
                    PriceObservation.commodity_id == commodity.id,
                    PriceObservation.status == "approved",
                    PriceObservation.currency == market.currency,
                    Market.country == market.country,
                    PriceObservation.observed_on <= today,
                    PriceObservation.observed_on > today - dt.timedelta(days=INPUT_HISTORY_DAYS),
                )
            ).all()
            if values:
                found = (today, decimal.Decimal(statistics.median(values)))
    if found is None:
        return None
    return (found[1] * unit.factor).quantize(_CENTS)


def post_offer(
    session: so.Session,
    *,
    buyer: Buyer,
    commodity: Commodity,
    quantity: decimal.Decimal,
    unit: Unit,
    price: decimal.Decimal,
    delivery_place: str = "",
    window_start: dt.date,
    window_end: dt.date,
    grade: Grade | None = None,
    market: Market | None = None,
    settings: Mapping[str, Any] | None = None,
    confirmed: bool = False,
) -> BuyOffer:
    """Store an offer (a quote when the buyer is a supplier) and tell the leaders near it.

    A price far from the reference makes it ``pending`` (nobody is told) unless
    ``confirmed``; see ``confirm_offer``. The caller sends the buyer its receipt.
    """
    country, currency = buyer_country(buyer), buyer_currency(buyer)
    if country is None or currency is None:
        raise OfferError("the buyer has no country or currency", "no_currency")
    if not buyer.active:
        raise OfferError("the buyer is not active", "not_buyer")
    if not quantity.is_finite() or not price.is_finite() or quantity <= 0 or price <= 0:
        raise OfferError("quantity and price must be above 0", "bad_amount")
    if quantity.adjusted() >= 10 or price.adjusted() >= 11:
        raise OfferError("quantity or price out of range", "bad_amount")
    if window_end < window_start:
        raise OfferError("the delivery window ends before it starts", "bad_days")
    kind = "supply" if buyer.kind == "supplier" else "buy"
    if (kind == "supply") != (commodity.kind == "input"):
        raise OfferError(f"a {buyer.kind} cannot offer {commodity.code}", "wrong_crop")
    market = market or buyer.market
    if market is not None and (market.country != country or market.currency != currency):
        raise OfferError(f"market {market.code} is not in {country}", "wrong_market")
    if grade is not None and grade.commodity_id != commodity.id:
        raise OfferError("grade belongs to another commodity", "wrong_grade")
    reference = reference_price(session, commodity, unit, market, window_start)
    far = is_far(price, reference, price_band(settings))
    offer = BuyOffer(
        buyer_id=buyer.id,
        commodity_id=commodity.id,
        grade_id=grade.id if grade else None,
        quantity=quantity.quantize(decimal.Decimal("0.001")),
        unit_id=unit.id,
        price=price.quantize(_CENTS),
        currency=currency,
        delivery_place=(delivery_place or (market.name if market else ""))[:120],
        window_start=window_start,
        window_end=window_end,
        kind=kind,
        market_id=market.id if market else None,
        status="pending" if far and not confirmed else "open",
    )
    session.add(offer)
    session.flush()
    if offer.status == "open":
        notify_leaders(session, offer, settings)
    return offer


def _buyer_offer(session: so.Session, buyer: Buyer, offer_id: int) -> BuyOffer:
    offer = session.scalars(
        sa.select(BuyOffer).where(BuyOffer.id == offer_id, BuyOffer.buyer_id == buyer.id)
        .with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if offer is None:
        raise OfferError(f"buyer {buyer.id} has no offer {offer_id}", "not_found")
    return offer


def confirm_offer(
    session: so.Session, buyer: Buyer, offer_id: int, settings: Mapping[str, Any] | None = None
) -> BuyOffer:
    """The buyer confirms a pending offer's price: it opens and the leaders are told."""
    offer = _buyer_offer(session, buyer, offer_id)
    if offer.status != "pending":
        raise OfferError(f"offer {offer.id} is {offer.status}", "not_pending")
    offer.status = "open"
    session.flush()
    notify_leaders(session, offer, settings)
    return offer


def withdraw_offer(session: so.Session, buyer: Buyer, offer_id: int, now: dt.datetime | None = None) -> BuyOffer:
    """The buyer takes an offer back: no group can take it any more (orders already
    opened against it stay, with what they reserved)."""
    offer = _buyer_offer(session, buyer, offer_id)
    if offer.status not in ("pending", "open"):
        raise OfferError(f"offer {offer.id} is {offer.status}", "not_open")
    offer.status, offer.withdrawn_at = "withdrawn", now or utcnow()
    session.flush()
    return offer


def offers_of(session: so.Session, buyer: Buyer, today: dt.date) -> list[BuyOffer]:
    """The buyer's pending and open offers still in their window, newest first."""
    return list(
        session.scalars(
            sa.select(BuyOffer)
            .where(BuyOffer.buyer_id == buyer.id, BuyOffer.status.in_(("pending", "open")),
                   BuyOffer.window_end >= today)
            .order_by(BuyOffer.id.desc())
        ).all()
    )


def _delivery_market(offer: BuyOffer) -> Market | None:
    return offer.market or offer.buyer.market


def groups_for(
    session: so.Session, offer: BuyOffer, settings: Mapping[str, Any] | None = None
) -> list[ProducerGroup]:
    """Groups that may take the offer: same country and currency, within OFFER_MATCH_KM of
    its delivery market, and (for a buyer's offer) selling its crop."""
    query = (
        sa.select(ProducerGroup)
        .join(Market, Market.id == ProducerGroup.market_id)
        .where(Market.country == buyer_country(offer.buyer), Market.currency == offer.currency)
        .order_by(ProducerGroup.id)
    )
    if offer.kind == "buy":
        query = query.join(GroupCommodity, GroupCommodity.group_id == ProducerGroup.id).where(
            GroupCommodity.commodity_id == offer.commodity_id
        )
    where = _delivery_market(offer)
    radius = match_km(settings)
    found = []
    for group in session.scalars(query.distinct()).all():
        distance = prices.distance_km(where, group.market) if where and group.market else None
        if where is None or distance is None or distance <= radius:
            found.append(group)
    return found


def notify_leaders(session: so.Session, offer: BuyOffer, settings: Mapping[str, Any] | None = None) -> int:
    """Queue the offer's SMS to the leaders of every matching group, at most once per offer,
    group and leader (one query for all the groups' leaders)."""
    groups = [group.id for group in groups_for(session, offer, settings)]
    if not groups:
        return 0
    leaders = session.execute(
        sa.select(Membership.group_id, Contact).join(Contact, Membership.contact_id == Contact.id)
        .where(Membership.group_id.in_(groups), Membership.role == "leader", Contact.consent != "withdrawn")
        .order_by(Membership.group_id, Contact.id)
    ).all()
    for group_id, leader in leaders:
        t = Text(leader.language)
        outbox.enqueue(
            session,
            to=leader.phone,
            text=offer_sms(t, offer),
            purpose="alert",
            key=f"offer:{offer.id}:group:{group_id}:{leader.id}",
            lang=t.lang,
            contact_id=leader.id,
        )
    return len(leaders)


def remaining(offer: BuyOffer) -> decimal.Decimal:
    """What is left of the offer for further orders."""
    return max(offer.quantity - offer.reserved_quantity, decimal.Decimal(0))


def open_offers_for(
    session: so.Session, contact: Contact, today: dt.date, settings: Mapping[str, Any] | None = None
) -> list[BuyOffer]:
    """Open offers and quotes the contact's led groups may take, best price first (for
    quotes: cheapest first), with something left."""
    groups = (
        session.scalars(
            sa.select(ProducerGroup).join(Membership)
            .where(Membership.contact_id == contact.id, Membership.role == "leader")
        ).all()
    )
    if not groups:
        return []
    candidates = session.scalars(
        sa.select(BuyOffer)
        .where(BuyOffer.status == "open", BuyOffer.window_end >= today,
               BuyOffer.reserved_quantity < BuyOffer.quantity)
        .order_by(BuyOffer.id)
    ).all()
    ids = {group.id for group in groups}
    found = [
        offer for offer in candidates
        if ids & {group.id for group in groups_for(session, offer, settings)}
    ]
    return sorted(found, key=lambda o: (o.kind, -o.price if o.kind == "buy" else o.price, o.id))


def reference_for(
    session: so.Session, offer: BuyOffer, market: Market, today: dt.date
) -> decimal.Decimal | None:
    """The market's latest approved price, per the offer's unit, to set the offer against."""
    return reference_price(session, offer.commodity, offer.unit, market, today)


OFFER_SMS = N_(
    "Offer %(id)s: %(buyer)s buys %(qty)s%(grade)s at %(price)s at %(place)s until %(date)s. "
    "Take it: OPEN OFFER %(id)s <qty>"
)
QUOTE_SMS = N_(
    "Quote %(id)s: %(buyer)s sells %(qty)s at %(price)s at %(place)s until %(date)s. "
    "Order: OPEN OFFER %(id)s <qty>"
)


def offer_sms(t: Text, offer: BuyOffer) -> str:
    """The leaders' SMS about a new offer or quote, with how to take it."""
    grade = f" {offer.grade.code}" if offer.grade else ""
    where = _delivery_market(offer)
    values = {
        "id": offer.id,
        "buyer": offer.buyer.name[:24],
        "qty": quantity_phrase(t, remaining(offer), offer.unit, offer.commodity),
        "grade": grade,
        "price": t.money(offer.price, offer.currency),
        "place": where.short_name if where else offer.delivery_place[:16],
        "date": t.date(offer.window_end),
    }
    message = OFFER_SMS if offer.kind == "buy" else QUOTE_SMS
    return t(message, **values)
