"""The collective sale, first half (issue 18, steps 1-4 and the supplier's quote): a buyer's
SMS offer reaches the leaders near its delivery market, a leader takes it, the buyer hears,
members are told how to join and join, through the real webhooks and the outbox.

Each journey is a function the payout side can extend (``kenya_sale``, ``senegal_sale``
return the offer and order). The concurrency test commits for real on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.models import (
    Buyer,
    BuyOffer,
    Commitment,
    Commodity,
    Contact,
    GroupOrder,
    Market,
    OutboundMessage,
    PriceObservation,
    ProducerGroup,
    Unit,
)
from smsgw.services import offer_matching, offers
from tests.test_ussd_flows import Phone
from tests.test_webhooks_sms import replies, send

KE_BUYER, KE_LEADER, KE_SW_MEMBER, KE_EN_MEMBER, KE_SUPPLIER = (
    "+254700000011", "+254700000001", "+254700000002", "+254700000004", "+254700000013",
)
SN_BUYER, SN_LEADER, SN_FR_MEMBER, SN_WO_MEMBER = "+221770000009", "+221770000001", "+221770000002", "+221770000003"
_keys = itertools.count()


@dataclass
class Sale:
    offer: BuyOffer
    order: GroupOrder


def outbox(session, key_like: str) -> list[OutboundMessage]:
    return list(session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like(key_like)).order_by(OutboundMessage.id)
    ))


def newest(session, model):
    return session.scalars(sa.select(model).order_by(model.id.desc())).first()


def kenya_sale(client, session) -> Sale:
    """Kenya in Swahili: OFA by SMS, leaders told, FUNGUA OFA, buyer told, members JIUNGE."""
    send(client, KE_LEADER, "LUGHA SW")
    send(client, KE_BUYER, "OFA MAHINDI G1 4400 500 GUNIA90 NAKURU 14")
    offer = newest(session, BuyOffer)
    assert offer.status == "open" and offer.kind == "buy" and offer.currency == "KES"
    assert offer.quantity == 500 and offer.price == 4400 and offer.grade.code == "G1"
    # The SMS handler's day is the service's (Africa/Nairobi), not the test machine's.
    local_today = dt.datetime.now(ZoneInfo("Africa/Nairobi")).date()
    assert offer.market.code == "nakuru" and offer.window_end == local_today + dt.timedelta(days=14)
    assert f"Ofa {offer.id} imetumwa: magunia 500 ya kilo 90 ya mahindi kwa KSh 4,400 hadi" in replies(
        session, KE_BUYER
    )[-1]

    told = outbox(session, f"offer:{offer.id}:group:%")
    assert KE_LEADER in {m.to_phone for m in told}
    assert all(m.to_phone.startswith("+254") and m.segments == 1 for m in told)
    mine = next(m for m in told if m.to_phone == KE_LEADER)
    assert f"FUNGUA OFA {offer.id}" in mine.text
    assert "Nakuru Millers Ltd ananunua magunia 500 ya kilo 90 ya mahindi G1 kwa KSh 4,400 Nakuru" in mine.text

    send(client, KE_LEADER, "OFA")  # a leader's bare OFA lists the offers it may take
    assert f"{offer.id} " in replies(session, KE_LEADER)[-1]

    send(client, KE_LEADER, f"FUNGUA OFA {offer.id} 120")
    order = newest(session, GroupOrder)
    assert order.offer_id == offer.id and order.status == "open" and order.kind == "sell"
    assert order.target_quantity == 120 and order.price == 4400 and order.unit.code == "bag90"
    assert f"Oda {order.id}" in replies(session, KE_LEADER)[-1]
    session.refresh(offer)
    assert offer.reserved_quantity == 120

    [taken] = outbox(session, f"offer:{offer.id}:taken:{order.id}")
    assert taken.to_phone == KE_BUYER and "Ngata" in taken.text and "380" in taken.text and taken.segments == 1
    assert f"wamechukua magunia 120 ya kilo 90 kutoka ofa yako {offer.id} (Mahindi" in taken.text

    news = {m.to_phone: m for m in outbox(session, f"order:{order.id}:opened:%")}
    assert KE_SW_MEMBER in news and KE_LEADER not in news
    assert f"JIUNGE {order.id} 10" in news[KE_SW_MEMBER].text and "*384#" in news[KE_SW_MEMBER].text
    assert f"JOIN {order.id} 10" in news[KE_EN_MEMBER].text
    assert all(m.segments == 1 for m in news.values())

    send(client, KE_SW_MEMBER, f"JIUNGE {order.id} 5")  # join, not subscribe
    send(client, KE_EN_MEMBER, f"JOIN {order.id} 8")
    session.refresh(order)
    assert order.committed_total == 13
    return Sale(offer, order)


def test_kenya_offer_to_members_joining_in_swahili(client, session) -> None:
    sale = kenya_sale(client, session)
    send(client, KE_BUYER, "OFA")  # the buyer's own offers
    assert f"{sale.offer.id} " in replies(session, KE_BUYER)[-1] and "380" in replies(session, KE_BUYER)[-1]
    # A member commits on USSD too (item 3, group orders).
    phone = Phone(client, "+254700000003")
    listing = phone.dial("3")
    assert f"#{sale.order.id}" in listing


def senegal_sale(client, session) -> Sale:
    """Senegal in French and Wolof: OFFRE, UBBI OFAR (Wolof leader), PARTICIPER and BOKK."""
    send(client, SN_BUYER, "OFFRE ARACHIDE G2 45000 150 SAC100 KAOLACK 30")
    offer = newest(session, BuyOffer)
    assert offer.status == "open" and offer.currency == "XOF", replies(session, SN_BUYER)
    assert f"Offre {offer.id} publiee : 150 sacs de 100 kg d'arachide a 45 000 FCFA" in replies(session, SN_BUYER)[-1]
    told = outbox(session, f"offer:{offer.id}:group:%")
    assert SN_LEADER in {m.to_phone for m in told}
    assert all(m.to_phone.startswith("+221") for m in told)
    assert f"UBBI OFAR {offer.id}" in next(m.text for m in told if m.to_phone == SN_LEADER)
    assert "dafay jend 150 saaku gerte yu 100 kg G2 ci 45.000 FCFA" in next(
        m.text for m in told if m.to_phone == SN_LEADER
    )

    send(client, SN_LEADER, f"UBBI OFAR {offer.id} 40")
    order = newest(session, GroupOrder)
    assert order.offer_id == offer.id and order.currency == "XOF" and order.target_quantity == 40
    [taken] = outbox(session, f"offer:{offer.id}:taken:{order.id}")
    assert taken.to_phone == SN_BUYER and "commande" in taken.text
    assert f"prend 40 sacs de 100 kg de votre offre {offer.id} (Arachide" in taken.text

    news = {m.to_phone: m.text for m in outbox(session, f"order:{order.id}:opened:%")}
    assert f"PARTICIPER {order.id} 10" in news[SN_FR_MEMBER] and f"BOKK {order.id} 10" in news[SN_WO_MEMBER]
    send(client, SN_FR_MEMBER, f"PARTICIPER {order.id} 10")
    send(client, SN_WO_MEMBER, f"BOKK {order.id} 5")
    session.refresh(order)
    assert order.committed_total == 15
    return Sale(offer, order)


def test_senegal_offer_to_members_joining_in_french_and_wolof(client, session) -> None:
    senegal_sale(client, session)


def _post(session, buyer_code: str, crop: str, unit: str, price: str, qty: str = "100") -> BuyOffer:
    buyer = session.scalar(sa.select(Buyer).where(Buyer.code == buyer_code))
    commodity = session.scalar(sa.select(Commodity).where(Commodity.code == crop))
    unit_row = session.scalar(sa.select(Unit).where(Unit.code == unit))
    today = dt.date.today()
    offer = offers.post_offer(session, buyer=buyer, commodity=commodity, quantity=Decimal(qty), unit=unit_row,
                              price=Decimal(price), window_start=today, window_end=today + dt.timedelta(days=10))
    session.commit()
    return offer


def test_a_kenyan_group_cannot_take_a_senegalese_offer(client, session) -> None:
    offer = _post(session, "huilerie-saloum", "groundnut", "bag100", "45000")
    before = session.scalar(sa.select(sa.func.count(GroupOrder.id)))
    send(client, KE_LEADER, f"OPEN OFFER {offer.id} 120")
    assert "another country" in replies(session, KE_LEADER)[-1]
    assert session.scalar(sa.select(sa.func.count(GroupOrder.id))) == before
    session.refresh(offer)
    assert offer.reserved_quantity == 0
    # Nor is it listed to Kenyan leaders.
    leader = session.scalar(sa.select(Contact).where(Contact.phone == KE_LEADER))
    assert offer not in offers.open_offers_for(session, leader, dt.date.today())


def test_an_offer_in_another_currency_is_refused(client, session) -> None:
    offer = _post(session, "nakuru-millers", "maize", "bag90", "4400")
    offer.currency = "USD"
    session.commit()
    send(client, KE_LEADER, f"OPEN OFFER {offer.id} 10")
    assert "USD" in replies(session, KE_LEADER)[-1] and "cannot take it" in replies(session, KE_LEADER)[-1]
    assert session.scalar(sa.select(GroupOrder).where(GroupOrder.offer_id == offer.id)) is None


def test_more_than_is_left_is_refused_and_cancelling_gives_it_back(client, session) -> None:
    offer = _post(session, "nakuru-millers", "maize", "bag90", "4400", qty="100")
    send(client, KE_LEADER, f"OPEN OFFER {offer.id} 80")
    order = newest(session, GroupOrder)
    send(client, KE_LEADER, f"OPEN OFFER {offer.id} 30")
    refusal = f"Offer {offer.id} has only 20 bags of 90 kg left. Send a smaller quantity."
    assert replies(session, KE_LEADER)[-1] == refusal
    send(client, KE_LEADER, f"CANCEL {order.id}")
    session.refresh(offer)
    session.refresh(order)
    assert offer.reserved_quantity == 0 and order.status == "cancelled"
    send(client, KE_LEADER, f"OPEN OFFER {offer.id} 100")
    session.refresh(offer)
    assert offer.reserved_quantity == 100


def test_a_price_far_from_the_market_waits_for_the_buyers_yes(client, session) -> None:
    send(client, KE_BUYER, "OFA MAHINDI 9900 100 GUNIA90 NAKURU 7")
    offer = newest(session, BuyOffer)
    assert offer.status == "pending"
    assert f"NDIO {offer.id}" in replies(session, KE_BUYER)[-1]
    assert not outbox(session, f"offer:{offer.id}:group:%")
    send(client, KE_BUYER, f"NDIO {offer.id}")
    session.refresh(offer)
    assert offer.status == "open" and outbox(session, f"offer:{offer.id}:group:%")
    send(client, KE_BUYER, f"JITOA OFA {offer.id}")
    session.refresh(offer)
    assert offer.status == "withdrawn" and offer.withdrawn_at is not None, replies(session, KE_BUYER)


def test_a_price_far_from_the_market_makes_a_draft_the_leader_confirms(client, session) -> None:
    dap = session.scalar(sa.select(Commodity).where(Commodity.code == "fertilizer-dap"))
    nakuru = session.scalar(sa.select(Market).where(Market.code == "nakuru"))
    day = dt.date.today() - dt.timedelta(days=3)
    session.add(PriceObservation(
        commodity_id=dap.id, market_id=nakuru.id, observed_on=day, amount=Decimal(3500), unit_id=dap.default_unit_id,
        currency="KES", price_per_base=(Decimal(3500) / dap.default_unit.factor).quantize(Decimal("0.000001")),
        kind="retail", source="test", source_ref=f"dap:{day}", status="approved",
    ))
    session.commit()
    send(client, KE_LEADER, "OPEN BUY 20 FERTILIZER 7")
    order = newest(session, GroupOrder)
    reply = replies(session, KE_LEADER)[-1]
    assert order.status == "draft" and f"YES {order.id}" in reply
    assert not outbox(session, f"order:{order.id}:opened:%")
    send(client, KE_SW_MEMBER, f"JOIN {order.id} 1")
    assert session.scalar(sa.select(Commitment).where(Commitment.order_id == order.id)) is None
    send(client, KE_LEADER, f"YES {order.id}")
    session.refresh(order)
    assert order.status == "open" and outbox(session, f"order:{order.id}:opened:%")


def test_a_sell_price_far_from_the_market_is_a_draft_until_yes(client, session) -> None:
    send(client, KE_LEADER, "OPEN SELL 100 MAIZE 9000 7")
    order = newest(session, GroupOrder)
    assert order.status == "draft" and not outbox(session, f"order:{order.id}:opened:%")
    send(client, KE_LEADER, f"CANCEL {order.id}")
    session.refresh(order)
    assert order.status == "cancelled"
    send(client, KE_LEADER, "OPEN SELL 100 MAIZE 4400 7")
    assert newest(session, GroupOrder).status == "open"


def test_a_supplier_quote_is_taken_as_a_buy_order(client, session) -> None:
    send(client, KE_SUPPLIER, "OFA MBOLEA 3500 200 BAG50 NAKURU 10")
    quote = newest(session, BuyOffer)
    assert quote.kind == "supply", replies(session, KE_SUPPLIER)
    if quote.status == "pending":
        send(client, KE_SUPPLIER, f"NDIO {quote.id}")
        session.refresh(quote)
    assert quote.status == "open"
    send(client, KE_LEADER, f"OPEN OFFER {quote.id} 40")
    order = newest(session, GroupOrder)
    assert order.offer_id == quote.id and order.kind == "buy" and order.price == 3500


def test_a_buyer_gets_the_buyer_help_not_the_farmers(client, session) -> None:
    send(client, KE_BUYER, "HELP")
    assert "OFA MAHINDI" in replies(session, KE_BUYER)[-1]
    send(client, KE_EN_MEMBER, "OFFER MAIZE 4400 10 BAG90")
    assert "registered buyers" in replies(session, KE_EN_MEMBER)[-1]


def test_withdraw_with_a_number_is_still_a_members_withdraw(client, session) -> None:
    send(client, KE_LEADER, "OPEN SELL 100 MAIZE 4400 7")
    order = newest(session, GroupOrder)
    send(client, KE_EN_MEMBER, f"JOIN {order.id} 4")
    send(client, KE_EN_MEMBER, f"WITHDRAW {order.id}")
    assert session.scalar(sa.select(Commitment).where(Commitment.order_id == order.id)) is None


def test_leader_takes_an_offer_on_ussd(client, session) -> None:
    offer = _post(session, "nakuru-millers", "maize", "bag90", "4400", qty="60")
    phone = Phone(client, KE_LEADER)
    menu = phone.dial("7", "1")
    assert "3" in menu
    listing = phone.dial("3")
    line = next(line for line in listing.splitlines() if f" {offer.id} " in f" {line} ")
    phone.dial(line.split(" ", 1)[0].removeprefix("CON "), "25", "5")
    assert phone.dial("1").startswith("END ")
    order = session.scalar(sa.select(GroupOrder).where(GroupOrder.offer_id == offer.id))
    assert order is not None and order.target_quantity == 25
    session.refresh(offer)
    assert offer.reserved_quantity == 25


@pytest.mark.postgres
def test_concurrent_acceptance_never_reserves_more_than_the_offer(database_url) -> None:
    engine = sa.create_engine(database_url, pool_size=20, max_overflow=0)
    make = so.sessionmaker(bind=engine, expire_on_commit=False)
    with make.begin() as session:
        buyer = session.scalar(sa.select(Buyer).where(Buyer.code == "nakuru-millers"))
        maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
        today = dt.date.today()
        offer = offers.post_offer(session, buyer=buyer, commodity=maize, quantity=Decimal(100),
                                  unit=maize.default_unit, price=Decimal(4400), window_start=today,
                                  window_end=today + dt.timedelta(days=5), confirmed=True)
        offer_id = offer.id
        group_id = session.scalar(sa.select(ProducerGroup.id).where(ProducerGroup.code == "ngata-farmers"))
        leader_id = session.scalar(sa.select(Contact.id).where(Contact.phone == KE_LEADER))

    def take(_: int) -> bool:
        with make() as session:
            try:
                offer_matching.take_offer(
                    session, session.get_one(Contact, leader_id), session.get_one(ProducerGroup, group_id),
                    offer_id, Decimal(15), days=3, now=dt.datetime.now(dt.UTC), today=dt.date.today(),
                )
                session.commit()
                return True
            except offer_matching.TakeError:
                session.rollback()
                return False

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            taken = sum(pool.map(take, range(16)))
        with make() as session:
            reserved = session.scalar(sa.select(BuyOffer.reserved_quantity).where(BuyOffer.id == offer_id))
            total = session.scalar(
                sa.select(sa.func.sum(GroupOrder.target_quantity)).where(GroupOrder.offer_id == offer_id)
            )
        assert taken == 6 and reserved == 90 and total == 90
    finally:
        with engine.begin() as conn:
            ids = sa.select(GroupOrder.id).where(GroupOrder.offer_id == offer_id).scalar_subquery()
            conn.execute(sa.delete(OutboundMessage).where(OutboundMessage.idempotency_key.like(f"offer:{offer_id}:%")))
            for oid in conn.execute(sa.select(GroupOrder.id).where(GroupOrder.offer_id == offer_id)).scalars():
                conn.execute(sa.delete(OutboundMessage).where(
                    OutboundMessage.idempotency_key.like(f"order:{oid}:%")))
            conn.execute(sa.delete(GroupOrder).where(GroupOrder.id.in_(ids)))
            conn.execute(sa.delete(BuyOffer).where(BuyOffer.id == offer_id))
        engine.dispose()
