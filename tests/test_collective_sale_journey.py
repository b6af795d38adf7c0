"""Issue 18, the whole journey in one test per country: from a buyer's SMS offer to every
member's confirmation of payment, through the real webhooks and the outbox only.

The first half is the offers side's journey (``kenya_sale``, ``senegal_sale``); from the
order on, the leader closes, records deliveries, settles and gives references by SMS, and
each member confirms in their own language.
"""
from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from smsgw.models import Commitment, GroupOrder, OutboundMessage
from tests.test_collective_sale_offers import (
    KE_EN_MEMBER,
    KE_LEADER,
    KE_SW_MEMBER,
    SN_FR_MEMBER,
    SN_LEADER,
    SN_WO_MEMBER,
    kenya_sale,
    senegal_sale,
)
from tests.test_webhooks_sms import send


def _members(session, order_id: int) -> dict[str, Commitment]:
    session.expire_all()
    return {c.contact.phone: c for c in session.scalars(sa.select(Commitment).where(Commitment.order_id == order_id))}


def _keys(session, pattern: str) -> dict[str, OutboundMessage]:
    rows = session.scalars(sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like(pattern)))
    return {row.to_phone: row for row in rows}


def test_kenya_from_the_buyers_offer_to_every_members_payment_in_swahili(client, session) -> None:
    sale = kenya_sale(client, session)
    order_id = sale.order.id
    send(client, KE_LEADER, f"FUNGA {order_id}")
    send(client, KE_LEADER, f"KABIDHI {order_id} {KE_SW_MEMBER} 5")
    send(client, KE_LEADER, f"KABIDHI {order_id} {KE_EN_MEMBER} 7")
    send(client, KE_LEADER, f"MALIPO {order_id} 4500")
    order = session.get(GroupOrder, order_id)
    session.refresh(order)
    assert (order.status, order.final_price) == ("fulfilled", 4500)
    members = _members(session, order_id)
    assert {p: c.payout for p, c in members.items()} == {
        KE_SW_MEMBER: Decimal("22500.00"),
        KE_EN_MEMBER: Decimal("31500.00"),
    }
    statements = _keys(session, f"order:{order_id}:statement:%")
    assert set(statements) == {KE_SW_MEMBER, KE_EN_MEMBER}
    assert "22,500" in statements[KE_SW_MEMBER].text and all(m.segments == 1 for m in statements.values())
    send(client, KE_LEADER, f"REF {order_id} {KE_SW_MEMBER} QK1AB2CD3E")
    send(client, KE_LEADER, f"REF {order_id} {KE_EN_MEMBER} QK1AB2CD3F")
    send(client, KE_SW_MEMBER, f"NIMELIPWA {order_id}")
    send(client, KE_EN_MEMBER, f"PAID {order_id}")
    members = _members(session, order_id)
    assert {p: (c.payment_reference, c.confirmation) for p, c in members.items()} == {
        KE_SW_MEMBER: ("QK1AB2CD3E", "confirmed"), KE_EN_MEMBER: ("QK1AB2CD3F", "confirmed"),
    }


def test_senegal_from_the_buyers_offer_to_every_members_payment_in_french_and_wolof(client, session) -> None:
    sale = senegal_sale(client, session)
    order_id = sale.order.id
    send(client, SN_LEADER, f"CLOSE {order_id}")
    send(client, SN_LEADER, f"JEBBAL {order_id} {SN_FR_MEMBER} 10")
    send(client, SN_LEADER, f"JEBBAL {order_id} {SN_WO_MEMBER} 4")
    send(client, SN_LEADER, f"FEY {order_id} 46000")
    order = session.get(GroupOrder, order_id)
    session.refresh(order)
    assert (order.status, order.final_price) == ("fulfilled", 46000)
    members = _members(session, order_id)
    assert {p: c.payout for p, c in members.items()} == {
        SN_FR_MEMBER: Decimal("460000.00"),
        SN_WO_MEMBER: Decimal("184000.00"),
    }
    assert set(_keys(session, f"order:{order_id}:statement:%")) == {SN_FR_MEMBER, SN_WO_MEMBER}
    send(client, SN_LEADER, f"REF {order_id} {SN_FR_MEMBER} WAVE123")
    send(client, SN_LEADER, f"REF {order_id} {SN_WO_MEMBER} WAVE124")
    send(client, SN_FR_MEMBER, f"RECU {order_id}")
    send(client, SN_WO_MEMBER, f"JOT {order_id}")
    members = _members(session, order_id)
    assert {p: c.confirmation for p, c in members.items()} == {SN_FR_MEMBER: "confirmed", SN_WO_MEMBER: "confirmed"}
