"""A whole group order by phone: opened by SMS, committed by USSD and SMS, totalled, closed."""
from __future__ import annotations

import sqlalchemy as sa

from smsgw.models import Commitment, GroupOrder, OutboundMessage
from tests.test_ussd_flows import Phone
from tests.test_webhooks_sms import replies, send

LEADER, MEMBER_USSD, MEMBER_SMS = "+254700000001", "+254700000002", "+254700000003"


def test_open_by_sms_commit_by_ussd_and_sms_total_and_close(client, session) -> None:
    send(client, LEADER, "OPEN SELL 100 MAIZE 4400 7")
    order = session.scalars(sa.select(GroupOrder).order_by(GroupOrder.id.desc())).first()
    assert order.target_quantity == 100 and order.status == "open"
    announced = {
        m.to_phone
        for m in session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like(f"order:{order.id}:opened:%"))
        )
    }
    assert {MEMBER_USSD, MEMBER_SMS} <= announced

    phone = Phone(client, MEMBER_USSD)
    listing = phone.dial("3")
    number = next(line.split(" ", 1)[0].removeprefix("CON ") for line in listing.splitlines() if f"#{order.id}" in line)
    phone.dial(number, "1", "12")
    assert phone.dial("1").startswith("END ")
    send(client, MEMBER_SMS, f"JOIN {order.id} 8")
    send(client, MEMBER_SMS, f"JOIN {order.id} 8")  # a second SMS changes, never adds

    send(client, LEADER, f"TOTAL {order.id}")
    assert "20/100" in replies(session, LEADER)[-1]
    send(client, LEADER, f"CLOSE {order.id}")
    session.refresh(order)
    assert order.status == "closed" and order.committed_total == 20
    assert (
        session.scalar(sa.select(sa.func.sum(Commitment.order_quantity)).where(Commitment.order_id == order.id)) == 20
    )

    receipts = session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like(f"order:{order.id}:commit:%"))
    ).all()
    assert {m.to_phone for m in receipts} == {MEMBER_USSD, MEMBER_SMS}
    closing = session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like(f"order:{order.id}:closed:%"))
    ).all()
    assert {m.to_phone for m in closing} == {MEMBER_USSD, MEMBER_SMS}
    assert all(m.segments == 1 for m in [*receipts, *closing])

    send(client, MEMBER_SMS, f"JOIN {order.id} 5")
    assert order.committed_total == 20
