"""Buyers' offers reach the right leaders, and orders opened against them keep the offer's terms."""

from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa

from smsgw.models import Buyer, BuyOffer, Commodity, GroupOrder, OutboundMessage, Unit
from smsgw.services import offers
from tests.test_webhooks_sms import send

LEADER = "+254700000001"


def _post(session) -> BuyOffer:
    buyer = session.scalar(sa.select(Buyer).where(Buyer.code == "nakuru-millers"))
    maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
    bag = session.scalar(sa.select(Unit).where(Unit.code == "bag90"))
    today = dt.date.today()
    return offers.post_offer(
        session,
        buyer=buyer,
        commodity=maize,
        quantity=decimal.Decimal(300),
        unit=bag,
        price=decimal.Decimal(4600),
        delivery_place="Nakuru depot",
        window_start=today,
        window_end=today + dt.timedelta(days=14),
    )


def test_leaders_of_growing_groups_are_told(session) -> None:
    offer = _post(session)
    rows = session.scalars(
        sa.select(OutboundMessage).where(
            OutboundMessage.idempotency_key.like(f"offer:{offer.id}:%")
        )
    ).all()
    phones = {row.to_phone for row in rows}
    assert LEADER in phones and all(p.startswith("+254") for p in phones)
    assert all(row.segments == 1 for row in rows)


def test_sms_open_against_an_offer_keeps_its_price_and_buyer(client, session) -> None:
    offer = _post(session)
    session.commit()
    send(client, LEADER, f"OPEN OFFER {offer.id} 120 10")
    order = session.scalars(sa.select(GroupOrder).order_by(GroupOrder.id.desc())).first()
    assert (
        order.offer_id == offer.id
        and order.price == offer.price
        and order.buyer_id == offer.buyer_id
    )
    assert order.target_quantity == 120


def test_sms_open_with_a_crop_name(client, session) -> None:
    send(client, LEADER, "OPEN SELL 200 MAIZE 4300 14")
    order = session.scalars(sa.select(GroupOrder).order_by(GroupOrder.id.desc())).first()
    assert order is not None and order.target_quantity == 200 and order.price == 4300


def test_reference_price_is_in_the_offer_unit(session) -> None:
    offer = _post(session)
    reference = offers.reference_for(session, offer, offer.buyer.market, dt.date.today())
    assert reference is not None and 3000 < reference < 6000
