"""Issue 18, after close: deliveries, settlement, statements, payment references, confirmations.

Each journey starts from an order opened with the services and goes through the real
webhooks (POST /at/sms, POST /at/ussd) and the outbox, in the members' own languages.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from smsgw.analytics import data
from smsgw.conversations.sms.settlement_commands import paid_day
from smsgw.db import utcnow
from smsgw.i18n import Text
from smsgw.messaging.encoding import measure
from smsgw.models import Commitment, Commodity, Contact, GroupOrder, Membership, OutboundMessage, ProducerGroup, Unit
from smsgw.services import order_texts, orders
from smsgw.services.quantities import quantity_phrase
from smsgw.web.database import get_session
from tests.test_admin_fixtures import post
from tests.test_ussd_flows import Phone
from tests.test_webhooks_sms import replies, send

pytest_plugins = ["tests.test_admin_fixtures"]


def _contact(session, phone: str) -> Contact:
    return session.scalars(sa.select(Contact).where(Contact.phone == phone)).one()


def _open(session, group: str, crop: str, unit: str, price: str, kind: str, commitments: dict[str, str]) -> int:
    """An order opened by the group's leader with the services, members committed: its id."""
    group_row = session.scalars(sa.select(ProducerGroup).where(ProducerGroup.code == group)).one()
    leader_id = session.scalar(
        sa.select(Membership.contact_id).where(Membership.group_id == group_row.id, Membership.role == "leader")
    )
    order = orders.open_order(
        session, session.get(Contact, leader_id), group_row, kind=kind,
        commodity=session.scalars(sa.select(Commodity).where(Commodity.code == crop)).one(),
        target_quantity=Decimal(100), unit=session.scalars(sa.select(Unit).where(Unit.code == unit)).one(),
        price=Decimal(price), deadline=utcnow() + dt.timedelta(days=7),
    )
    for phone, qty in commitments.items():
        orders.commit(session, order.id, _contact(session, phone), Decimal(qty), now=utcnow(), event_key=f"t:{phone}")
    session.commit()
    return order.id


def _messages(session, pattern: str) -> list[OutboundMessage]:
    return list(session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like(pattern)).order_by(OutboundMessage.id)
    ))


def _line(screen: str, text: str) -> str:
    """The number of the screen line containing ``text``."""
    for line in screen.removeprefix("CON ").splitlines():
        number, _, label = line.partition(" ")
        if text in label:
            return number
    raise AssertionError(f"{text!r} not on {screen!r}")


def _commitments(session, order_id: int) -> dict[str, Commitment]:
    session.expire_all()
    rows = session.scalars(sa.select(Commitment).where(Commitment.order_id == order_id))
    return {row.contact.phone: row for row in rows}


# Kenya, Swahili: Njabini Growers (leader +254700000006 reads Swahili), potatoes in 50 kg bags.
KE_LEADER, KE_A, KE_B, KE_C = "+254700000006", "+254700000007", "+254700000008", "+254700000009"


def test_kenya_in_swahili_from_close_to_every_members_confirmation(app, client, session) -> None:
    app.config["GROUP_FEE_PER_UNIT"] = "KES:100,XOF:500"
    order_id = _open(session, "njabini-growers", "potatoes", "bag50", "2800", "sell",
                     {KE_A: "8", KE_B: "6", KE_C: "12"})
    send(client, KE_LEADER, f"FUNGA {order_id}")
    assert session.get(GroupOrder, order_id).status == "closed"
    sw = Text("sw")

    # Delivery by USSD: leader menu -> orders -> the order -> record deliveries -> first member.
    phone = Phone(client, KE_LEADER)
    screen = phone.dial()
    screen = phone.dial(_line(screen, sw("Leader: my group orders")), "2")
    screen = phone.dial(_line(screen, f"#{order_id}"))
    screen = phone.dial(_line(screen, sw("Record deliveries")))
    assert len(screen) <= 164 and "12>?" in screen  # CON + 160
    screen = phone.dial("1", "11")  # the largest commitment first: +254700000009
    assert sw("Grade found at delivery:") in screen
    end = phone.dial(_line(screen, "C1"))
    assert end.startswith("END ") and "Oda" in end and "1 kati ya 3" in end, end
    assert "amewasilisha magunia 11 ya kilo 50 C1." in end, end

    # Delivery by SMS: by position in the list, and by phone as Kenyans write it.
    send(client, KE_LEADER, f"KABIDHI {order_id} 2 8")
    send(client, KE_LEADER, f"KABIDHI {order_id} 0700000008 5 C2")
    assert "3 kati ya 3" in replies(session, KE_LEADER)[-1]
    assert "amewasilisha magunia 5 ya kilo 50 C2." in replies(session, KE_LEADER)[-1]
    rows = _commitments(session, order_id)
    assert {p: r.delivered_quantity for p, r in rows.items()} == {KE_A: 8, KE_B: 5, KE_C: 11}
    assert rows[KE_C].delivered_grade.code == "C1" and rows[KE_B].delivered_grade.code == "C2"

    # Settlement: final price, paid today; the fee comes from GROUP_FEE_PER_UNIT.
    send(client, KE_LEADER, f"MALIPO {order_id} 3,000 leo")
    order = session.get(GroupOrder, order_id)
    session.refresh(order)
    assert order.status == "fulfilled" and order.final_price == 3000 and order.fee_per_unit == 100
    assert order.paid_on is not None and order.settled_at is not None
    rows = _commitments(session, order_id)
    assert {p: r.payout for p, r in rows.items()} == {KE_A: 23200, KE_B: 14500, KE_C: 31900}
    assert "69,600" in replies(session, KE_LEADER)[-1]
    statements = _messages(session, f"order:{order_id}:statement:%")
    assert {m.to_phone for m in statements} == {KE_A, KE_B, KE_C}
    for message in statements:
        assert message.segments == 1 and message.encoding == "gsm7", message.text
    by_phone = {m.to_phone: m.text for m in statements}
    assert "31,900" in by_phone[KE_C] and "Oda" in by_phone[KE_C] and "haitumi pesa" in by_phone[KE_C]
    assert "moves no money" in by_phone[KE_A]  # +254700000007 reads English
    assert "magunia 11 ya kilo 50 x KSh 3,000, ada KSh 100 kila: KSh 31,900 ni zako." in by_phone[KE_C]
    assert "8 bags of 50 kg x KSh 3,000, less fee KSh 100 each: KSh 23,200 for you." in by_phone[KE_A]

    # A second SETTLE changes nothing and sends nothing more.
    send(client, KE_LEADER, f"MALIPO {order_id} 3500")
    assert len(_messages(session, f"order:{order_id}:statement:%")) == 3
    assert session.get(GroupOrder, order_id).final_price == 3000

    # Payment references, one per member; each member is asked to confirm.
    for position, code in ((1, "QK1AB2CD3E"), (2, "QK1AB2CD3F"), (3, "QK1AB2CD3G")):
        send(client, KE_LEADER, f"REF {order_id} {position} {code}")
    rows = _commitments(session, order_id)
    assert rows[KE_C].payment_reference == "QK1AB2CD3E" and rows[KE_B].payment_reference == "QK1AB2CD3G"
    asked = _messages(session, f"order:{order_id}:reference:%")
    assert len(asked) == 3 and all(m.segments == 1 for m in asked)
    assert "NIMELIPWA" in next(m.text for m in asked if m.to_phone == KE_C)

    # Every member confirms: two by SMS (Swahili and English), one by USSD under Group orders.
    send(client, KE_C, f"NIMELIPWA {order_id}")
    send(client, KE_A, f"PAID {order_id}")
    member = Phone(client, KE_B)
    screen = member.dial("3")
    screen = member.dial(_line(screen, f"#{order_id}"))
    assert "14,500" in screen and "QK1AB2CD3G" in screen, screen
    assert f"Oda {order_id}: magunia 5 ya kilo 50, KSh 14,500 ni zako." in screen, screen
    assert member.dial("1").startswith("END Asante")
    rows = _commitments(session, order_id)
    assert {r.confirmation for r in rows.values()} == {"confirmed"}
    assert all(r.confirmed_at is not None for r in rows.values())
    assert "yamethibitishwa" in replies(session, KE_C)[-1]

    # The settled order feeds the analytics, with the buyer's payment day as its reference day.
    frame = data.load_orders(session.connection())
    row = frame[frame["order_id"] == order_id].iloc[0]
    assert bool(row["settled"]) and row["status"] == "fulfilled" and row["quantity"] == 24 * 50


# Senegal, French and Wolof: GIE Potou Oignons (leader +221770000005 reads French), onions.
SN_LEADER, SN_A, SN_B, SN_C = "+221770000005", "+221770000006", "+221770000007", "+221770000008"


def test_senegal_in_french_and_wolof_with_a_member_who_delivered_nothing(app, client, session) -> None:
    order_id = _open(session, "potou-oignons", "onion", "bag50", "23100", "sell", {SN_A: "10", SN_B: "8", SN_C: "5"})
    send(client, SN_LEADER, f"FERMER {order_id}")
    send(client, SN_LEADER, f"REGLER {order_id} 23600 hier")
    assert "LIVRE" in replies(session, SN_LEADER)[-1]  # 3 members have no delivery: how to record none
    send(client, SN_LEADER, f"LIVRE {order_id} 1 10 C1")
    assert "a livré 10 sacs de 50 kg C1." in replies(session, SN_LEADER)[-1]
    send(client, SN_LEADER, f"LIVRE {order_id} 2 7")
    send(client, SN_LEADER, f"LIVRE {order_id} +221770000008 0")
    assert "3 sur 3" in replies(session, SN_LEADER)[-1]
    send(client, SN_LEADER, f"REGLER {order_id} 23600 hier")
    order = session.get(GroupOrder, order_id)
    session.refresh(order)
    assert order.paid_on == dt.datetime.now(ZoneInfo("Africa/Nairobi")).date() - dt.timedelta(days=1)
    rows = _commitments(session, order_id)
    assert rows[SN_A].payout == 236000 and rows[SN_B].payout == 165200 and rows[SN_C].payout is None
    statements = {m.to_phone: m for m in _messages(session, f"order:{order_id}:statement:%")}
    assert set(statements) == {SN_A, SN_B, SN_C}
    assert all(m.segments == 1 and m.encoding == "gsm7" for m in statements.values())
    assert "Komand" in statements[SN_A].text and "236" in statements[SN_A].text
    assert "10 saaku yu 50 kg x 23.600 FCFA: 236.000 FCFA ngir yow." in statements[SN_A].text
    lang = _contact(session, SN_C).language
    assert statements[SN_C].text == Text(lang)(
        "Order %(id)s for %(crop)s is complete. No delivery was recorded for you.",
        id=order_id, crop=order_texts.crop(order, lang),
    )

    send(client, SN_LEADER, f"REF {order_id} 1 T4WV-AB12")
    send(client, SN_LEADER, f"REF {order_id} 2 T4WV-AB13")
    send(client, SN_LEADER, f"REF {order_id} 3 T4WV-AB14")
    assert replies(session, SN_LEADER)[-1] == Text("fr")("No delivery is recorded for this member or order.")
    assert "JOT" in next(m.text for m in _messages(session, f"order:{order_id}:reference:%") if m.to_phone == SN_A)
    send(client, SN_A, f"JOT {order_id}")
    send(client, SN_B, f"jot {order_id}")
    send(client, SN_C, f"JOT {order_id}")  # owed nothing: told so, nothing recorded
    rows = _commitments(session, order_id)
    confirmations = (rows[SN_A].confirmation, rows[SN_B].confirmation, rows[SN_C].confirmation)
    assert confirmations == ("confirmed", "confirmed", None)


def test_input_buying_costs_each_member_the_price_plus_the_fee(app, client, session) -> None:
    leader, a, b = "+254700000001", "+254700000002", "+254700000003"
    order_id = _open(session, "ngata-farmers", "fertilizer-dap", "bag50", "3400", "buy", {a: "2", b: "3"})
    send(client, leader, f"CLOSE {order_id}")
    send(client, leader, f"DELIVERED {order_id} {b} 3")
    send(client, leader, f"DELIVERED {order_id} 2 2")
    send(client, leader, f"SETTLE {order_id} 3500 today")
    assert "Format" not in replies(session, leader)[-1]
    assert session.get(GroupOrder, order_id).fee_per_unit == 0  # GROUP_FEE_PER_UNIT is empty
    rows = _commitments(session, order_id)
    assert rows[a].payout == 7000 and rows[b].payout == 10500
    text = next(m.text for m in _messages(session, f"order:{order_id}:statement:%") if m.to_phone == a)
    assert "kulipa" in text and "7,000" in text  # +254700000002 reads Swahili: "to pay"
    assert f"Oda {order_id}: umepokea magunia 2 ya kilo 50 x KSh 3,500: KSh 7,000 kulipa." in text, text
    send(client, leader, f"REF {order_id} 1 QK9ZZ11")
    send(client, b, f"RECEIVED {order_id}")
    assert _commitments(session, order_id)[b].confirmation == "confirmed"


def test_a_dispute_reaches_the_leader_and_the_admin_page_and_the_csv(app, client, session, operator) -> None:
    leader, a, b = "+221770000001", "+221770000002", "+221770000003"
    order_id = _open(session, "ndiaffate-producteurs", "groundnut", "bag100", "50600", "sell", {a: "14", b: "6"})
    send(client, leader, f"TEJ {order_id}")
    send(client, leader, f"JEBBAL {order_id} 1 14 G1")
    send(client, leader, f"JEBBAL {order_id} 2 6 G2")
    send(client, leader, f"FEY {order_id} 51300")
    send(client, leader, f"REF {order_id} 1 T4WV-9K3P")
    send(client, leader, f"REF {order_id} 2 T4WV-9K4R")
    send(client, a, f"LITIGE {order_id} Recu 250000 F, pas 304800 F")
    send(client, b, f"XULOO {order_id} =HYPERLINK(\"http://x\")")
    rows = _commitments(session, order_id)
    assert rows[a].confirmation == "disputed" and rows[a].dispute_note == "Recu 250000 F, pas 304800 F"
    assert "clamation" in replies(session, a)[-1]
    told = _messages(session, f"order:{order_id}:dispute:%")
    assert {m.to_phone for m in told} == {leader} and len(told) == 2 and all(m.segments == 1 for m in told)
    # A member may still confirm after disputing (the note stays on record).
    send(client, a, f"RECU {order_id}")
    assert _commitments(session, order_id)[a].confirmation == "confirmed"

    page = operator.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    assert 'id="disputes"' in page and "HYPERLINK" in page and "T4WV-9K4R" in page
    response = operator.get(f"/admin/orders/{order_id}/members.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["confirmation"] for r in table] == ["confirmed", "disputed"]
    assert table[1]["dispute_note"].startswith("'=HYPERLINK") and table[0]["payment_reference"] == "T4WV-9K3P"
    assert Decimal(table[0]["payout"]) == 14 * 51300 and table[1]["grade"] == "G2"


def test_operator_records_deliveries_settles_and_references_from_the_order_page(app, session, operator) -> None:
    order_id = _open(session, "ngata-farmers", "maize", "bag90", "4300", "sell",
                     {"+254700000002": "10", "+254700000003": "4"})
    orders.close(session, order_id, _contact(session, "+254700000001"), now=utcnow())
    session.commit()
    ids = {p: r.contact_id for p, r in _commitments(session, order_id).items()}
    page = f"/admin/orders/{order_id}"
    assert 'id="deliveries"' in operator.get(page).get_data(as_text=True)
    post(operator, f"{page}/deliveries", {f"delivered-{ids['+254700000002']}": "9.5",
                                          f"delivered-{ids['+254700000003']}": "4"}, page=page)
    today = dt.date.today().isoformat()
    response = post(operator, f"{page}/settle", {"final_price": "4400", "paid_on": today, "fee_per_unit": "40"},
                    page=page)
    assert response.status_code == 302
    with app.app_context():
        db = get_session()
        order = db.get(GroupOrder, order_id)
        assert order.status == "fulfilled" and order.fee_per_unit == 40
        payouts = {c.contact.phone: c.payout for c in order.commitments}
    assert payouts == {"+254700000002": Decimal("41420.00"), "+254700000003": Decimal("17440.00")}
    post(operator, f"{page}/references", {f"ref-{ids['+254700000002']}": "qk7abc123"}, page=page)
    shown = operator.get(page).get_data(as_text=True)
    assert "QK7ABC123" in shown and 'id="references"' in shown
    assert len(_messages(session, f"order:{order_id}:statement:%")) == 2


def test_refusals_say_what_to_do(client, session) -> None:
    leader, member = "+254700000001", "+254700000002"
    order_id = _open(session, "ngata-farmers", "beans", "bag90", "11000", "sell", {member: "3"})
    t = Text("en")
    send(client, leader, f"DELIVERED {order_id} 1 3")
    assert replies(session, leader)[-1] == t("Close the order first: deliveries and payouts come after close.")
    send(client, leader, f"CLOSE {order_id}")
    send(client, member, f"DELIVERED {order_id} 1 3")
    assert replies(session, member)[-1] == Text("sw")("Only the group leader can do that.")
    send(client, leader, f"DELIVERED {order_id} 7 3")
    assert "No such member" in replies(session, leader)[-1]
    send(client, leader, f"DELIVERED {order_id}")
    assert replies(session, leader)[-1].startswith("Format: DELIVERED")
    send(client, leader, f"SETTLE {order_id} 11500 31/02")
    assert "date is not possible" in replies(session, leader)[-1]
    send(client, member, f"NIMELIPWA {order_id}")
    not_settled = Text("sw")("This order is not settled yet. Your leader sends the statements.")
    assert replies(session, member)[-1] == not_settled
    send(client, leader, f"DELIVERED {order_id} 1 3 G9")
    assert replies(session, leader)[-1] == t("That grade is not known for this crop.")
    send(client, leader, f"DELIVERED {order_id} 1 3")
    send(client, leader, f"SETTLE {order_id} 11500")
    send(client, leader, f"REF {order_id} 1 !")
    assert replies(session, leader)[-1] == t("That payment code is not valid: 3 to 40 letters or digits.")


def test_the_demo_holds_one_settled_order_per_country_with_a_dispute(session, operator) -> None:
    settled = session.scalars(sa.select(GroupOrder).where(GroupOrder.settled_at.is_not(None))).all()
    assert sorted(order.currency for order in settled) == ["KES", "XOF"]
    rows = [c for order in settled for c in order.commitments]
    assert all(c.payout and c.payment_reference and c.delivered_grade_id for c in rows)
    assert [c.confirmation for c in rows].count("disputed") == 1
    senegal = next(order for order in settled if order.currency == "XOF")
    page = operator.get(f"/admin/orders/{senegal.id}").get_data(as_text=True)
    assert 'id="disputes"' in page and "304800" in page
    frame = data.load_orders(session.connection())
    assert frame["settled"].sum() == 2


def test_settlement_texts_fit_one_sms_with_long_real_values() -> None:
    from smsgw.services import settlement_texts

    for lang in ("en", "fr", "sw", "wo"):
        t = Text(lang)
        for msgid in (settlement_texts.SELL_FEE, settlement_texts.BUY_FEE, settlement_texts.SELL_REFERENCE,
                      settlement_texts.BUY_REFERENCE):
            # The longest quantity: a decimal count of the largest bags or of crates.
            units = (Unit(code="bag100", factor=Decimal(100)), Unit(code="crate", factor=Decimal(64)))
            qty = max((quantity_phrase(t, Decimal("1250.5"), unit) for unit in units), key=len)
            text = t(msgid, id="12345", date=t.date(dt.date(2026, 12, 4)), qty=qty,
                     price=t.money(Decimal(512500), "XOF"), fee=t.money(Decimal(1250), "XOF"),
                     total=t.money(Decimal(123456789), "XOF"), ref="QK12AB34CD56EF")
            assert measure(text).units <= 160 and measure(text).encoding == "gsm7", (lang, text)


def test_the_paid_day_is_read_like_a_sale_day() -> None:
    today = dt.date(2026, 1, 2)
    for words, expected in (
        ([], today), (["leo"], today), (["tey"], today), (["jana"], dt.date(2026, 1, 1)),
        (["avant", "hier"], dt.date(2025, 12, 31)), (["28/12"], dt.date(2025, 12, 28)),
        (["2025-12-30"], dt.date(2025, 12, 30)), (["31/02"], None), (["soon"], None),
    ):
        assert paid_day(words, today) == expected, words
