"""A group takes a buyer's offer (or a supplier's quote), and a leader opens an order by hand.

Taking an offer reserves the quantity taken in one conditional UPDATE::

    UPDATE buy_offer SET reserved_quantity = reserved_quantity + :q
    WHERE id = :id AND status = 'open' AND reserved_quantity + :q <= quantity

so however many leaders take the same offer at once (PostgreSQL, several processes), the
orders on one offer never add up to more than its quantity: the row lock makes the
second UPDATE re-read the first one's result. Cancelling the order gives it back
(``orders.cancel``). The buyer is told, and the members get the new-order SMS.

Opening by hand (``open_by_hand``) checks the price against the reference; a price far
from it makes a ``draft`` that the leader confirms (``confirm``) before anyone is texted.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import rowcount
from smsgw.i18n import N_, Text
from smsgw.messaging import outbox
from smsgw.models import Buyer, BuyOffer, Commodity, Contact, GroupOrder, ProducerGroup, Unit
from smsgw.services import offers, orders
from smsgw.services.buyers import buyer_country
from smsgw.services.quantities import quantity_phrase

TAKE_ERRORS = frozenset({
    "not_found", "not_open", "wrong_country", "wrong_currency", "too_much", "not_leader", "bad_quantity",
    "wrong_crop", "too_far",
})
_QTY = decimal.Decimal("0.001")
MAX_DAYS = 60


class TakeError(Exception):
    """An offer a group cannot take; ``code`` is one of TAKE_ERRORS, ``offer`` the offer
    when there is one (for the refusal's words)."""

    def __init__(self, code: str, reason: str, offer: BuyOffer | None = None) -> None:
        super().__init__(reason)
        self.code, self.offer = code, offer


def _days(now: dt.datetime, days: int, offer: BuyOffer | None = None) -> dt.datetime:
    deadline = now + dt.timedelta(days=max(1, min(days, MAX_DAYS)))
    if offer is not None:
        # Members commit before the buyer's window closes (its last day included).
        end = dt.datetime.combine(offer.window_end, dt.time(23, 59), tzinfo=dt.UTC)
        deadline = max(min(deadline, end), now + dt.timedelta(hours=1))
    return deadline


def check_takeable(
    session: so.Session, offer: BuyOffer | None, group: ProducerGroup, today: dt.date,
    settings: Mapping[str, Any] | None = None,
) -> BuyOffer:
    """The offer, if ``group`` may take it now; else TakeError saying why."""
    if offer is None:
        raise TakeError("not_found", "no such offer")
    if offer.status != "open" or offer.window_end < today or offers.remaining(offer) <= 0:
        raise TakeError("not_open", f"offer {offer.id} is {offer.status}", offer)
    market = group.market
    if market is None or buyer_country(offer.buyer) != market.country:
        raise TakeError("wrong_country", f"offer {offer.id} is for another country", offer)
    if offer.currency != market.currency:
        raise TakeError("wrong_currency", f"offer {offer.id} is in {offer.currency}", offer)
    if offer.kind == "buy" and offer.commodity not in group.commodities:
        raise TakeError("wrong_crop", f"group {group.id} does not sell {offer.commodity.code}", offer)
    if group not in offers.groups_for(session, offer, settings):
        raise TakeError("too_far", f"group {group.id} is too far from offer {offer.id}", offer)
    return offer


def reserve(session: so.Session, offer_id: int, quantity: decimal.Decimal) -> bool:
    """Add ``quantity`` to the offer's reserved quantity if it still fits; whether it did."""
    result = session.execute(
        sa.update(BuyOffer)
        .where(
            BuyOffer.id == offer_id,
            BuyOffer.status == "open",
            BuyOffer.reserved_quantity + quantity <= BuyOffer.quantity,
        )
        .values(reserved_quantity=BuyOffer.reserved_quantity + quantity)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


def take_offer(
    session: so.Session, leader: Contact, group: ProducerGroup, offer_id: int, quantity: decimal.Decimal,
    *, days: int, now: dt.datetime, today: dt.date, settings: Mapping[str, Any] | None = None,
) -> GroupOrder:
    """Open an order of ``group`` against offer ``offer_id`` for ``quantity`` of its unit.

    Refusals (TakeError, orders.OrderError) come before anything is written.
    """
    offer = session.get(BuyOffer, offer_id)
    offer = check_takeable(session, offer, group, today, settings)
    if orders._role(session, leader.id, group.id) != "leader":
        raise TakeError("not_leader", f"contact {leader.id} does not lead group {group.id}", offer)
    if not quantity.is_finite() or quantity <= 0 or quantity.adjusted() >= 10:
        raise TakeError("bad_quantity", f"{quantity} is not a quantity", offer)
    quantity = quantity.quantize(_QTY, decimal.ROUND_HALF_UP)
    with session.begin_nested():
        if not reserve(session, offer.id, quantity):
            session.refresh(offer)
            raise TakeError("too_much", f"offer {offer.id} has {offers.remaining(offer)} left", offer)
        session.refresh(offer)
        order = orders.open_order(
            session, leader, group, kind="sell" if offer.kind == "buy" else "buy",
            commodity=offer.commodity, target_quantity=quantity, unit=offer.unit, price=offer.price,
            deadline=_days(now, days, offer), offer=offer,
        )
    _tell_buyer(session, offer, order, group)
    return order


TAKEN_SMS = N_(
    "%(group)s takes %(qty)s of your offer %(offer)s (%(crop)s at %(price)s): order %(id)s. "
    "Left: %(left)s."
)


def _tell_buyer(session: so.Session, offer: BuyOffer, order: GroupOrder, group: ProducerGroup) -> None:
    buyer: Buyer = offer.buyer
    contact = buyer.contact
    if contact is None or contact.consent == "withdrawn":
        return
    t = Text(contact.language)
    text = t(
        TAKEN_SMS, group=group.name[:24], qty=quantity_phrase(t, order.target_quantity, offer.unit),
        offer=offer.id, crop=offer.commodity.short(t.lang), price=t.money(offer.price, offer.currency),
        id=order.id, left=t.number(offers.remaining(offer)),
    )
    outbox.enqueue(session, to=contact.phone, text=text, purpose="order", key=f"offer:{offer.id}:taken:{order.id}",
                   lang=t.lang, contact_id=contact.id)


@dataclass(frozen=True)
class Opened:
    """An order opened by hand: a ``draft`` waits for the leader's YES (price far from
    ``reference``, in the order's unit)."""

    order: GroupOrder
    reference: decimal.Decimal | None
    draft: bool


def open_by_hand(
    session: so.Session, leader: Contact, group: ProducerGroup, *, kind: str, commodity: Commodity,
    quantity: decimal.Decimal, unit: Unit, price: decimal.Decimal, days: int, now: dt.datetime,
    today: dt.date, settings: Mapping[str, Any] | None = None,
) -> Opened:
    """Open a sell or buy order, as a draft when its price is far from the reference."""
    reference = offers.reference_price(session, commodity, unit, group.market or leader.home_market, today)
    far = offers.is_far(price, reference, offers.price_band(settings))
    order = orders.open_order(
        session, leader, group, kind=kind, commodity=commodity, target_quantity=quantity, unit=unit,
        price=price, deadline=_days(now, days), draft=far,
    )
    return Opened(order, reference, far)


@dataclass(frozen=True)
class Confirmed:
    """What a YES <number> confirmed: a buyer's offer or a leader's draft order."""

    offer: BuyOffer | None = None
    order: GroupOrder | None = None


def confirm(
    session: so.Session, contact: Contact, number: int, *, buyer: Buyer | None, now: dt.datetime,
    settings: Mapping[str, Any] | None = None,
) -> Confirmed:
    """YES <number>: the buyer's pending offer, else the leader's draft order, goes ahead."""
    if buyer is not None:
        pending = session.scalar(
            sa.select(BuyOffer.id).where(BuyOffer.id == number, BuyOffer.buyer_id == buyer.id,
                                         BuyOffer.status == "pending")
        )
        if pending is not None:
            return Confirmed(offer=offers.confirm_offer(session, buyer, number, settings))
    return Confirmed(order=orders.publish_draft(session, number, contact, now=now))
