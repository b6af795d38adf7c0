"""Every Africa's Talking callback replayed three times, in order and out of order: one
effect each (one sale, one subscription, one commitment, one stored SMS and one reply,
one forward move of a message's status, one end of a USSD session).
"""
from __future__ import annotations

import datetime as dt
import itertools
import random
from decimal import Decimal

import pytest
import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.messaging.outbox import enqueue
from smsgw.models import (
    Commitment,
    Commodity,
    Contact,
    DeliveryReport,
    GroupOrder,
    InboundMessage,
    OutboundMessage,
    ProducerGroup,
    SaleReport,
    Subscription,
    Unit,
    UssdSession,
)
from smsgw.services import orders

LEADER, MEMBER = "+254700000001", "+254700000002"
REPLAYS = 3
ORDERS = ["in-order", "shuffled"]
_ids = itertools.count()


def _schedule(requests: list, order: str, seed: int = 11) -> list:
    """Each request three times: back to back, or all of them shuffled."""
    if order == "in-order":
        return [request for request in requests for _ in range(REPLAYS)]
    shuffled = requests * REPLAYS
    random.Random(seed).shuffle(shuffled)
    return shuffled


def _hops(inputs: list[str]) -> list[str]:
    """The ``text`` of every hop of a session that types ``inputs``."""
    return ["*".join(inputs[:n]) for n in range(len(inputs) + 1)]


def _play(client, phone: str, inputs: list[str], order: str) -> tuple[str, list[str]]:
    session_id = f"dup-{next(_ids)}"
    bodies = []
    for text in _schedule(_hops(inputs), order):
        response = client.post(
            "/at/ussd", data={"sessionId": session_id, "phoneNumber": phone, "serviceCode": "*384#", "text": text}
        )
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert body[:4] in ("CON ", "END ") and "went wrong" not in body, (text, body)
        bodies.append(body)
    return session_id, bodies


def _count(session, column, *where) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count(column)).where(*where))


@pytest.mark.parametrize("order", ORDERS)
def test_ussd_sale_report_replayed_is_one_sale(client, session, order) -> None:
    before = _count(session, SaleReport.id)
    _, bodies = _play(client, LEADER, ["4", "1", "1", "10", "1", "4300", "1", "1"], order)
    assert any(body.startswith("END Thank you") for body in bodies)
    assert _count(session, SaleReport.id) == before + 1


@pytest.mark.parametrize("order", ORDERS)
def test_ussd_subscription_replayed_is_one_subscription(client, session, order) -> None:
    contact = session.scalar(sa.select(Contact).where(Contact.phone == LEADER))
    before = _count(session, Subscription.id, Subscription.contact_id == contact.id)
    _, bodies = _play(client, LEADER, ["1", "1", "2", "1"], order)
    assert any(body.startswith("END Done") for body in bodies)
    assert _count(session, Subscription.id, Subscription.contact_id == contact.id) == before + 1


@pytest.mark.parametrize("order", ORDERS)
def test_ussd_commitment_replayed_is_one_commitment_and_one_receipt(client, session, order) -> None:
    leader = session.scalar(sa.select(Contact).where(Contact.phone == LEADER))
    group = session.scalar(sa.select(ProducerGroup).where(ProducerGroup.code == "ngata-farmers"))
    bag = session.scalar(sa.select(Unit).where(Unit.code == "bag90"))
    maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
    opened = orders.open_order(
        session, leader, group, kind="sell", commodity=maize, target_quantity=Decimal(200),
        unit=bag, price=Decimal(4300), deadline=utcnow() + dt.timedelta(days=3),
    )
    session.commit()
    listing = client.post(
        "/at/ussd", data={"sessionId": f"dup-{next(_ids)}", "phoneNumber": MEMBER, "text": "3"}
    ).get_data(as_text=True)
    number = next(line.removeprefix("CON ").split(" ")[0] for line in listing.splitlines() if f"#{opened.id}" in line)
    _, bodies = _play(client, MEMBER, ["3", number, "1", "15", "1"], order)
    assert any("sasa ni 15 kati ya magunia 200 ya kilo 90." in body for body in bodies), bodies
    session.expire_all()
    assert _count(session, Commitment.id, Commitment.order_id == opened.id) == 1
    assert session.get(GroupOrder, opened.id).committed_total == 15
    assert _count(session, OutboundMessage.id, OutboundMessage.idempotency_key.like(f"order:{opened.id}:commit:%")) == 1


@pytest.mark.parametrize("order", ORDERS)
def test_inbound_sms_replayed_is_stored_once_with_one_reply_and_one_effect(client, session, order) -> None:
    contact = session.scalar(sa.select(Contact).where(Contact.phone == LEADER))
    sales, subs = (
        _count(session, SaleReport.id),
        _count(session, Subscription.id, Subscription.contact_id == contact.id),
    )
    texts = {
        f"dup-sms-{order}-1": "SOLD 10bag90 maize 4300",
        f"dup-sms-{order}-2": "SUB POTATOES NAIROBI",
        f"dup-sms-{order}-3": "PRICE MAIZE",
    }
    for gateway_id in _schedule(list(texts), order):
        fields = {
            "from": LEADER,
            "to": "22384",
            "text": texts[gateway_id],
            "id": gateway_id,
            "date": utcnow().strftime("%Y-%m-%d %H:%M:%S"),
        }
        assert client.post("/at/sms", data=fields).status_code == 200
    ids = session.scalars(sa.select(InboundMessage.id).where(InboundMessage.gateway_id.in_(texts))).all()
    assert len(ids) == 3
    replies = session.scalars(
        sa.select(OutboundMessage.idempotency_key).where(
            OutboundMessage.to_phone == LEADER, OutboundMessage.purpose == "reply"
        )
    ).all()
    assert sorted(replies) == sorted(f"reply:{i}" for i in ids)
    assert _count(session, SaleReport.id) == sales + 1
    assert _count(session, Subscription.id, Subscription.contact_id == contact.id) == subs + 1


@pytest.mark.parametrize("order", ORDERS)
def test_delivery_reports_replayed_move_each_message_forward_once(client, session, order) -> None:
    reports = {
        "ATXid_ok": ["Sent", "Buffered", "Success"],
        "ATXid_bad": ["Submitted", "Failed"],
        "ATXid_late": ["Success", "Sent"],  # AT's reports overtake each other
    }
    messages = {}
    for gateway_id in reports:
        message = enqueue(
            session, to=MEMBER, text=f"hello {gateway_id}", purpose="order", key=f"dup:{order}:{gateway_id}"
        )
        message.status, message.gateway_message_id, message.sent_at = "sent", gateway_id, utcnow()
        messages[gateway_id] = message
    session.commit()
    finals: dict[str, dt.datetime] = {}
    callbacks = [(gateway_id, status) for gateway_id, statuses in reports.items() for status in statuses]
    for gateway_id, status in _schedule(callbacks, order):
        fields = {
            "id": gateway_id,
            "status": status,
            "phoneNumber": MEMBER,
            "networkCode": "63902",
            "failureReason": "UserInSufficientCredit" if status == "Failed" else "",
            "retryCount": "0",
        }
        assert client.post("/at/delivery", data=fields).status_code == 200
        session.expire_all()
        row = session.get(OutboundMessage, messages[gateway_id].id)
        if row.final_at is not None:
            # The first final report settles the message; replays never move it again.
            assert finals.setdefault(gateway_id, row.final_at) == row.final_at
    session.expire_all()
    status = {gateway_id: session.get(OutboundMessage, message.id).status for gateway_id, message in messages.items()}
    assert status == {"ATXid_ok": "delivered", "ATXid_bad": "failed", "ATXid_late": "delivered"}
    assert session.get(OutboundMessage, messages["ATXid_bad"].id).last_error == "UserInSufficientCredit"
    # Every report is kept as received, for the record.
    assert _count(session, DeliveryReport.id, DeliveryReport.gateway_message_id.in_(reports)) == REPLAYS * len(
        callbacks
    )


@pytest.mark.parametrize("order", ORDERS)
def test_ussd_end_event_replayed_ends_the_session_once(client, session, order) -> None:
    session_id = f"dup-end-{order}"
    hops = [("hop", text) for text in _hops(["4", "1", "1", "10", "1", "4300", "1", "1"])]
    sales = _count(session, SaleReport.id)
    ended_at = None
    for kind, text in _schedule([*hops, ("end", "")], order):
        if kind == "hop":
            data = {"sessionId": session_id, "phoneNumber": LEADER, "text": text}
            assert client.post("/at/ussd", data=data).status_code == 200
            continue
        data = {
            "sessionId": session_id,
            "phoneNumber": LEADER,
            "status": "Success",
            "durationInMillis": "41000",
            "input": "1",
            "cost": "KES 0.50",
        }
        assert client.post("/at/ussd/events", data=data).status_code == 200
        session.expire_all()
        row = session.scalar(sa.select(UssdSession).where(UssdSession.session_id == session_id))
        ended_at = ended_at or row.ended_at
        assert row.ended_at == ended_at, "a replayed end event must not move the end"
    # A hop AT repeats after its end event does not overwrite how the session ended.
    last = {"sessionId": session_id, "phoneNumber": LEADER, "text": hops[-1][1]}
    assert client.post("/at/ussd", data=last).status_code == 200
    session.expire_all()
    rows = session.scalars(sa.select(UssdSession).where(UssdSession.session_id == session_id)).all()
    assert len(rows) == 1
    assert (rows[0].status, rows[0].duration_ms, rows[0].cost, rows[0].ended_at) == (
        "Success",
        41000,
        "KES 0.50",
        ended_at,
    )
    assert _count(session, SaleReport.id) == sales + 1


@pytest.mark.parametrize("order", ORDERS)
def test_first_time_caller_registers_and_reports_one_sale_of_the_crop_chosen(client, session, order) -> None:
    # Every hop replays the whole path; after the caller has registered, the replay must
    # still walk through the registration screens, or the name lands on the crop list.
    newcomer = "+254711000321"
    before = _count(session, SaleReport.id)
    _, bodies = _play(client, newcomer, ["1", "4", "Achieng Otieno", "4", "1", "1", "10", "1", "4300", "1", "1"], order)
    assert any(body.startswith("END Thank you") for body in bodies), bodies
    contacts = session.scalars(sa.select(Contact).where(Contact.phone == newcomer)).all()
    assert [(c.name, c.home_market.code) for c in contacts] == [("Achieng Otieno", "nakuru")]
    sales = session.scalars(sa.select(SaleReport).where(SaleReport.contact_id == contacts[0].id)).all()
    assert _count(session, SaleReport.id) == before + 1
    assert [(s.commodity.code, s.unit.code, s.quantity, s.price) for s in sales] == [("maize", "bag90", 10, 4300)]
