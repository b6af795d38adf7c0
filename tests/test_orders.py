"""Group orders through their whole life, on the seeded demo groups (rolled back per test)."""

from __future__ import annotations

import datetime as dt
import gettext
from decimal import Decimal

import pytest
import sqlalchemy as sa

from smsgw.conversations.reminders import send_reminders
from smsgw.db import utcnow
from smsgw.messaging.encoding import measure
from smsgw.models import (
    Commitment,
    Commodity,
    Contact,
    Grade,
    GroupOrder,
    OutboundMessage,
    ProducerGroup,
    Unit,
)
from smsgw.services import orders
from smsgw.services.orders import OrderError


@pytest.fixture(autouse=True)
def english_sentences(monkeypatch) -> None:
    """Sentences are checked against their English msgids (names stay in each member's
    language); the translations themselves are covered by the i18n and budget tests."""
    monkeypatch.setattr("smsgw.i18n.translations", lambda lang: gettext.NullTranslations())

LEADER, PETER, MARY, JOHN, ESTHER = (f"+25470000000{i}" for i in range(1, 6))
OTHER_LEADER = "+254700000006"


def contact(session, phone: str) -> Contact:
    return session.scalars(sa.select(Contact).where(Contact.phone == phone)).one()


def unit(session, code: str) -> Unit:
    return session.scalars(sa.select(Unit).where(Unit.code == code)).one()


def commodity(session, code: str) -> Commodity:
    return session.scalars(sa.select(Commodity).where(Commodity.code == code)).one()


def group(session, code: str = "ngata-farmers") -> ProducerGroup:
    return session.scalars(sa.select(ProducerGroup).where(ProducerGroup.code == code)).one()


def outbox(session, order: GroupOrder, event: str = "") -> dict[str, OutboundMessage]:
    """The order's queued SMS by idempotency key, optionally only one kind of event."""
    prefix = f"order:{order.id}:{event}"
    rows = session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.startswith(prefix))
    ).all()
    return {row.idempotency_key: row for row in rows}


def sql_sum(session, order: GroupOrder) -> Decimal:
    total = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Commitment.order_quantity), 0)).where(
            Commitment.order_id == order.id
        )
    )
    return Decimal(total).quantize(Decimal("0.001"))


def maize_order(session, *, days: float = 3, target: str = "100", **extra) -> GroupOrder:
    values = {
        "kind": "sell",
        "commodity": commodity(session, "maize"),
        "target_quantity": Decimal(target),
        "unit": unit(session, "bag90"),
        "price": Decimal(4350),
        "deadline": utcnow() + dt.timedelta(days=days),
    }
    return orders.open_order(
        session, contact(session, LEADER), group(session), **{**values, **extra}
    )


def refused(code: str):
    return pytest.raises(OrderError, check=lambda e: e.code == code)


def test_led_groups(session) -> None:
    assert [g.code for g in orders.led_groups(session, contact(session, LEADER))] == [
        "ngata-farmers"
    ]
    assert orders.led_groups(session, contact(session, PETER)) == []


def test_leader_opens_an_order_and_other_members_hear_of_it(session) -> None:
    order = maize_order(session)
    assert (order.status, order.currency, order.committed_total) == ("open", "KES", 0)
    sent = outbox(session, order, "opened")
    members = [contact(session, phone) for phone in (PETER, MARY, JOHN, ESTHER)]
    assert set(sent) == {f"order:{order.id}:opened:{m.id}" for m in members}
    john = sent[f"order:{order.id}:opened:{contact(session, JOHN).id}"]
    assert john.purpose == "order" and john.to_phone == JOHN
    # Issue 17: a quantity is said in words ("100 bags of 90 kg of maize"), not as a unit label.
    assert "100 bags of 90 kg of maize" in john.text and "KSh 4,350" in john.text
    peter = sent[f"order:{order.id}:opened:{contact(session, PETER).id}"]
    assert "of mahindi" in peter.text  # English sentences here (see english_sentences), his crop name


def test_only_a_leader_of_the_group_opens_orders(session) -> None:
    before = session.scalar(sa.select(sa.func.count(GroupOrder.id)))
    for phone in (PETER, OTHER_LEADER):
        with refused("not_leader"):
            orders.open_order(
                session,
                contact(session, phone),
                group(session),
                kind="sell",
                commodity=commodity(session, "maize"),
                target_quantity=Decimal(10),
                unit=unit(session, "bag90"),
                price=None,
                deadline=utcnow() + dt.timedelta(days=1),
            )
    assert session.scalar(sa.select(sa.func.count(GroupOrder.id))) == before


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"target": "0"}, "bad_quantity"),
        ({"target": "-5"}, "bad_quantity"),
        ({"price": Decimal(0)}, "bad_price"),
        ({"price": Decimal(-1)}, "bad_price"),
        ({"days": -1}, "bad_deadline"),
    ],
)
def test_open_refuses_bad_values(session, change: dict, code: str) -> None:
    with refused(code):
        maize_order(session, **change)


def test_open_refuses_a_naive_deadline(session) -> None:
    with refused("bad_deadline"):
        maize_order(session, deadline=dt.datetime.now() + dt.timedelta(days=2))


def test_commits_in_any_unit_change_and_withdraw_keep_the_total_exact(session) -> None:
    order = maize_order(session)
    now = utcnow()
    peter, mary, john = (contact(session, p) for p in (PETER, MARY, JOHN))
    orders.commit(session, order.id, peter, Decimal(10), now=now, event_key="u1")
    orders.commit(
        session, order.id, mary, Decimal(450), unit(session, "kg"), now=now, event_key="u2"
    )
    result = orders.commit(
        session, order.id, john, Decimal(1), unit(session, "tonne"), now=now, event_key="u3"
    )
    # 10 bags + 450 kg (5 bags) + 1 tonne (11.111 bags)
    assert result.total == Decimal("26.111") == order.committed_total == sql_sum(session, order)
    assert (result.members, result.percent, result.target) == (3, 26, Decimal(100))
    assert result.unit.code == "bag90" and result.unit_price == Decimal(4350)

    result = orders.commit(session, order.id, peter, Decimal(4), now=now, event_key="u4")
    assert result.total == Decimal("20.111") == sql_sum(session, order) and result.members == 3
    result = orders.withdraw(session, order.id, mary, now=now, event_key="u5")
    assert result.total == Decimal("15.111") == sql_sum(session, order) and result.members == 2

    ranked = orders.commitments(session, order)
    assert [(c.contact.phone, c.quantity, c.unit.code) for c in ranked] == [
        (JOHN, Decimal(1), "tonne"),
        (PETER, Decimal(4), "bag90"),
    ]
    sent = outbox(session, order)
    assert sent[f"order:{order.id}:commit:u2"].text == (
        f"Order {order.id}: you committed 450 kilograms of mahindi. Group total 15/100 bags of 90 kg."
    )
    assert sent[f"order:{order.id}:commit:u3"].to_phone == JOHN
    assert sent[f"order:{order.id}:commit:u3"].text == (
        f"Order {order.id}: you committed 1 tonne of maize. Group total 26.1/100 bags of 90 kg."
    )
    withdrawn = sent[f"order:{order.id}:withdraw:u5"]
    assert withdrawn.purpose == "receipt" and withdrawn.text == (
        f"Order {order.id}: your commitment of 450 kilograms of mahindi is withdrawn. "
        "Group total 15.1/100 bags of 90 kg."
    )


def test_a_repeated_event_sends_one_receipt(session) -> None:
    order = maize_order(session)
    peter = contact(session, PETER)
    for _ in range(2):
        result = orders.commit(
            session, order.id, peter, Decimal("2.5"), now=utcnow(), event_key="dup"
        )
    assert result.total == Decimal("2.5") and result.members == 1
    assert list(outbox(session, order, "commit")) == [f"order:{order.id}:commit:dup"]
    assert "you committed 2.5 bags of 90 kg of mahindi." in outbox(session, order, "commit")[
        f"order:{order.id}:commit:dup"
    ].text


@pytest.mark.parametrize(
    ("quantity", "unit_code", "code"),
    [
        ("0", None, "bad_quantity"),
        ("-3", None, "bad_quantity"),
        ("0.0001", None, "bad_quantity"),
        ("NaN", None, "bad_quantity"),
        ("Infinity", None, "bad_quantity"),
        ("100001", None, "bad_quantity"),  # over 1000 x the target of 100 bags
        ("0.01", "kg", "bad_quantity"),  # 0.0001 bag: nothing at three decimals
    ],
)
def test_commit_refuses_bad_quantities(
    session, quantity: str, unit_code: str | None, code: str
) -> None:
    order = maize_order(session)
    member_unit = unit(session, unit_code) if unit_code else None
    with refused(code):
        orders.commit(
            session,
            order.id,
            contact(session, PETER),
            Decimal(quantity),
            member_unit,
            now=utcnow(),
            event_key="bad",
        )
    assert order.committed_total == 0 and outbox(session, order, "commit") == {}


def test_commit_refusals(session) -> None:
    order = maize_order(session, days=1)
    with refused("not_member"):
        orders.commit(
            session,
            order.id,
            contact(session, OTHER_LEADER),
            Decimal(1),
            now=utcnow(),
            event_key="x",
        )
    with refused("not_found"):
        orders.commit(
            session,
            order.id + 1000,
            contact(session, PETER),
            Decimal(1),
            now=utcnow(),
            event_key="x",
        )
    with refused("no_commitment"):
        orders.withdraw(session, order.id, contact(session, PETER), now=utcnow(), event_key="x")
    with refused("not_member"):
        orders.withdraw(
            session, order.id, contact(session, OTHER_LEADER), now=utcnow(), event_key="x"
        )
    orders.commit(
        session, order.id, contact(session, PETER), Decimal(3), now=utcnow(), event_key="ok"
    )
    late = order.deadline + dt.timedelta(seconds=1)
    with refused("deadline_passed"):
        orders.commit(
            session, order.id, contact(session, MARY), Decimal(1), now=late, event_key="late"
        )
    with refused("deadline_passed"):
        orders.withdraw(session, order.id, contact(session, PETER), now=late, event_key="late")
    assert order.committed_total == 3 == sql_sum(session, order)


def test_close_refuses_later_commits_and_tells_committed_members(session) -> None:
    order = maize_order(session)
    now = utcnow()
    peter, mary = contact(session, PETER), contact(session, MARY)
    orders.commit(session, order.id, peter, Decimal(12), now=now, event_key="c1")
    orders.commit(
        session, order.id, mary, Decimal(900), unit(session, "kg"), now=now, event_key="c2"
    )
    with refused("not_leader"):
        orders.close(session, order.id, peter, now=now)
    closed = orders.close(session, order.id, contact(session, LEADER), now=now)
    assert (closed.status, closed.closed_at) == ("closed", now)
    sent = outbox(session, order, "closed")
    assert set(sent) == {
        f"order:{order.id}:closed:{peter.id}",
        f"order:{order.id}:closed:{mary.id}",
    }
    assert sent[f"order:{order.id}:closed:{mary.id}"].text == (
        f"Order {order.id} closed: group total 22 bags of 90 kg of mahindi. "
        "Your part: 900 kilograms. Your leader will arrange delivery."
    )
    with refused("not_open"):
        orders.commit(
            session, order.id, contact(session, JOHN), Decimal(1), now=now, event_key="c3"
        )
    with refused("not_open"):
        orders.withdraw(session, order.id, peter, now=now, event_key="c4")
    with refused("not_open"):
        orders.close(session, order.id, contact(session, LEADER), now=now)
    assert order.committed_total == 22 == sql_sum(session, order)


def test_cancel_open_or_closed_tells_committed_members(session) -> None:
    leader, peter = contact(session, LEADER), contact(session, PETER)
    first, second = maize_order(session), maize_order(session)
    for order in (first, second):
        orders.commit(session, order.id, peter, Decimal(2), now=utcnow(), event_key=f"k{order.id}")
    orders.close(session, second.id, leader, now=utcnow())
    with refused("not_leader"):
        orders.cancel(session, first.id, peter, now=utcnow())
    for order in (first, second):
        assert orders.cancel(session, order.id, leader, now=utcnow()).status == "cancelled"
        sent = outbox(session, order, "cancelled")
        assert list(sent) == [f"order:{order.id}:cancelled:{peter.id}"]
        assert sent[f"order:{order.id}:cancelled:{peter.id}"].text == (
            f"Order {order.id} for Mahindi is cancelled by the group leader. "
            "Your commitment of 2 bags of 90 kg is no longer part of a group order."
        )
        with refused("not_open"):
            orders.cancel(session, order.id, leader, now=utcnow())


def test_fulfil_records_deliveries_and_tells_members(session) -> None:
    order = maize_order(session)
    leader, peter, john = contact(session, LEADER), contact(session, PETER), contact(session, JOHN)
    orders.commit(session, order.id, peter, Decimal(10), now=utcnow(), event_key="f1")
    orders.commit(session, order.id, john, Decimal(4), now=utcnow(), event_key="f2")
    with refused("not_open"):
        orders.fulfil(session, order.id, final_price=Decimal(4400), delivered={}, now=utcnow())
    orders.close(session, order.id, leader, now=utcnow())
    with refused("bad_price"):
        orders.fulfil(session, order.id, final_price=Decimal(0), delivered={}, now=utcnow())
    with refused("no_commitment"):
        orders.fulfil(
            session,
            order.id,
            final_price=Decimal(4400),
            delivered={leader.id: Decimal(1)},
            now=utcnow(),
        )
    with refused("bad_quantity"):
        orders.fulfil(
            session,
            order.id,
            final_price=Decimal(4400),
            delivered={peter.id: Decimal(-1)},
            now=utcnow(),
        )
    done = orders.fulfil(
        session,
        order.id,
        final_price=Decimal(4400),
        delivered={peter.id: Decimal("9.5")},
        now=utcnow(),
    )
    assert (done.status, done.final_price) == ("fulfilled", Decimal(4400))
    assert {c.contact_id: c.delivered_quantity for c in orders.commitments(session, order)} == {
        peter.id: Decimal("9.5"),
        john.id: Decimal(0),
    }
    sent = outbox(session, order, "fulfilled")
    assert sent[f"order:{order.id}:fulfilled:{john.id}"].text == (
        f"Order {order.id} for Maize is complete. No delivery was recorded for you."
    )
    assert sent[f"order:{order.id}:fulfilled:{peter.id}"].text == (
        f"Order {order.id} done: you delivered 9.5 bags of 90 kg of mahindi at KSh 4,400 each. Total: KSh 41,800."
    )
    with refused("not_open"):
        orders.cancel(session, order.id, leader, now=utcnow())


def test_close_expired_closes_only_orders_past_their_deadline(session) -> None:
    soon, later = maize_order(session, days=0.01), maize_order(session, days=2)
    orders.commit(
        session, soon.id, contact(session, PETER), Decimal(5), now=utcnow(), event_key="e1"
    )
    now = utcnow() + dt.timedelta(hours=1)
    assert orders.close_expired(session, now) == 1
    assert (soon.status, soon.closed_at, later.status) == ("closed", now, "open")
    assert list(outbox(session, soon, "closed")) == [
        f"order:{soon.id}:closed:{contact(session, PETER).id}"
    ]
    assert orders.close_expired(session, now) == 0


def test_reminders_go_to_members_not_yet_in_orders_closing_within_a_day(session) -> None:
    soon, later = maize_order(session, days=0.8), maize_order(session, days=3)
    esther = contact(session, ESTHER)
    esther.consent = "withdrawn"
    orders.commit(
        session, soon.id, contact(session, PETER), Decimal(5), now=utcnow(), event_key="r1"
    )
    due = orders.reminders_due(session, utcnow())
    assert [(order.id, member.phone) for order, member in due] == [
        (soon.id, LEADER),
        (soon.id, MARY),
        (soon.id, JOHN),
    ]
    assert orders.reminders_due(session, utcnow() + dt.timedelta(days=2, hours=1)) != []
    assert all(
        order is later
        for order, _ in orders.reminders_due(session, utcnow() + dt.timedelta(days=2, hours=1))
    )


def test_a_reminder_says_the_group_total_against_the_target_in_words(session) -> None:
    soon = maize_order(session, days=0.8)
    orders.commit(session, soon.id, contact(session, PETER), Decimal(5), now=utcnow(), event_key="r2")
    assert send_reminders(session, utcnow()) == 4
    texts = {key.rsplit(":", 1)[1]: row.text for key, row in outbox(session, soon, "reminder").items()}
    assert texts[str(contact(session, MARY).id)].endswith(
        f"Group has 5/100 bags of 90 kg. Reply JOIN {soon.id} and your quantity."
    ), texts


def test_opted_out_members_get_no_sms_but_may_commit(session) -> None:
    esther = contact(session, ESTHER)
    esther.consent = "withdrawn"
    order = maize_order(session)
    orders.commit(session, order.id, esther, Decimal(3), now=utcnow(), event_key="o1")
    orders.close(session, order.id, contact(session, LEADER), now=utcnow())
    assert order.committed_total == 3
    assert not [row for row in outbox(session, order).values() if row.contact_id == esther.id]


def test_order_lists_for_members_and_leaders(session) -> None:
    leader, peter = contact(session, LEADER), contact(session, PETER)
    first, second, third = (
        maize_order(session),
        maize_order(session, days=0.5),
        maize_order(session),
    )
    orders.close(session, first.id, leader, now=utcnow())
    orders.cancel(session, third.id, leader, now=utcnow())
    assert orders.open_orders_for(session, peter, utcnow()) == [second]
    assert orders.open_orders_for(session, peter, utcnow() + dt.timedelta(days=1)) == []
    assert orders.open_orders_for(session, contact(session, OTHER_LEADER), utcnow()) == []
    assert orders.orders_led_by(session, leader) == [second, first]
    assert orders.orders_led_by(session, peter) == []
    assert orders.get_order(session, second.id) is second and orders.get_order(session, -1) is None


def test_buy_order_reaches_volume_price_tiers(session) -> None:
    order = maize_order(
        session,
        kind="buy",
        commodity=commodity(session, "beans"),
        price=Decimal(9000),
        tiers=[(Decimal(100), Decimal(8100)), (Decimal(40), Decimal(8500))],
    )
    assert [(t.min_quantity, t.unit_price) for t in order.price_tiers] == [
        (Decimal(40), Decimal(8500)),
        (Decimal(100), Decimal(8100)),
    ]
    assert (
        "Price KSh 8,100 each from 100."
        in next(iter(outbox(session, order, "opened").values())).text
    )
    peter, mary = contact(session, PETER), contact(session, MARY)
    assert (
        orders.commit(
            session, order.id, peter, Decimal(30), now=utcnow(), event_key="b1"
        ).unit_price
        == 9000
    )
    assert (
        orders.commit(session, order.id, mary, Decimal(10), now=utcnow(), event_key="b2").unit_price
        == 8500
    )
    result = orders.commit(
        session, order.id, peter, Decimal(9000), unit(session, "kg"), now=utcnow(), event_key="b3"
    )
    assert (result.total, result.percent, result.unit_price) == (Decimal(110), 110, Decimal(8100))
    assert orders.totals(session, order) == result


def test_tiers_and_kinds_the_caller_must_not_send(session) -> None:
    with pytest.raises(ValueError):
        maize_order(session, tiers=[(Decimal(10), Decimal(4000))])  # tiers on a sell order
    with pytest.raises(ValueError):
        maize_order(session, kind="swap")
    with refused("bad_price"):
        maize_order(session, kind="buy", tiers=[(Decimal(10), Decimal(0))])
    with refused("bad_quantity"):
        maize_order(
            session, kind="buy", tiers=[(Decimal(10), Decimal(5)), (Decimal("10.0"), Decimal(4))]
        )


@pytest.mark.parametrize("kind", ["sell", "buy"])
def test_every_message_fits_one_gsm7_sms_in_every_language(session, kind: str) -> None:
    # Long but realistic: the longest crop name, a grade, five-figure prices and quantities
    # with decimals, members in all four languages and units with long labels.
    njabini = group(session, "njabini-growers")
    leader = contact(session, OTHER_LEADER)
    members = [contact(session, f"+25470000000{i}") for i in (7, 8, 9)]
    for member, lang in zip(members, ("fr", "wo", "sw"), strict=True):
        member.language = lang
    potatoes = commodity(session, "potatoes")
    grade = session.scalars(
        sa.select(Grade).where(Grade.commodity_id == potatoes.id, Grade.code == "C1")
    ).one()
    tiers = (
        [(Decimal(1000), Decimal("12250.50")), (Decimal(5000), Decimal("11999.99"))]
        if kind == "buy"
        else []
    )
    order = orders.open_order(
        session,
        leader,
        njabini,
        kind=kind,
        commodity=potatoes,
        target_quantity=Decimal("12345.5"),
        unit=unit(session, "crate"),
        price=Decimal("12500.75"),
        grade=grade,
        deadline=utcnow() + dt.timedelta(days=10),
        tiers=tiers,
    )
    bag = unit(session, "bag100")
    for i, member in enumerate([leader, *members]):
        orders.commit(
            session, order.id, member, Decimal("1234.567"), bag, now=utcnow(), event_key=f"l{i}"
        )
        orders.commit(
            session, order.id, member, Decimal("1234.5"), bag, now=utcnow(), event_key=f"m{i}"
        )
    orders.withdraw(session, order.id, members[0], now=utcnow(), event_key="w")
    orders.commit(
        session,
        order.id,
        members[0],
        Decimal("99999.999"),
        unit(session, "kg"),
        now=utcnow(),
        event_key="n",
    )
    orders.close(session, order.id, leader, now=utcnow())
    delivered = {m.id: Decimal("1928.906") for m in members[:2]}
    orders.fulfil(
        session, order.id, final_price=Decimal("12999.99"), delivered=delivered, now=utcnow()
    )
    second = orders.open_order(
        session,
        leader,
        njabini,
        kind=kind,
        commodity=potatoes,
        target_quantity=Decimal(500),
        unit=unit(session, "crate"),
        price=None,
        deadline=utcnow() + dt.timedelta(days=3),
    )
    orders.commit(session, second.id, members[1], Decimal(120), now=utcnow(), event_key="s")
    orders.cancel(session, second.id, leader, now=utcnow())

    sent = {**outbox(session, order), **outbox(session, second)}
    events = {key.split(":")[2] for key in sent}
    assert events == {"opened", "commit", "withdraw", "closed", "fulfilled", "cancelled"}
    for row in sent.values():
        wire = measure(row.text)
        assert wire.encoding == "gsm7", row.text
        # Each message names its order once; leave room for a five-digit order id.
        assert wire.units + 5 - len(str(order.id)) <= 160, (wire.units, row.text)
