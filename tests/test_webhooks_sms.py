"""POST /at/sms and /at/delivery: stored once, one reply, STOP honoured, caps hold."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.models import (
    Contact,
    InboundMessage,
    OutboundMessage,
    PriceObservation,
    SaleReport,
    Subscription,
)

_ids = itertools.count()
FARMER, SWAHILI, SENEGAL, REPORTER = (
    "+254700000001",
    "+254700000002",
    "+221770000001",
    "+254700000010",
)


def send(client, phone: str, text: str, gateway_id: str | None = None):
    """Post one inbound SMS as AT does."""
    return client.post(
        "/at/sms",
        data={
            "from": phone,
            "to": "22384",
            "text": text,
            "date": utcnow().strftime("%Y-%m-%d %H:%M:%S"),
            "id": gateway_id or f"at-{next(_ids)}",
            "linkId": "",
        },
    )


def replies(session, phone: str) -> list[str]:
    """The reply texts queued for ``phone``, oldest first."""
    return list(
        session.scalars(
            sa.select(OutboundMessage.text)
            .where(OutboundMessage.to_phone == phone, OutboundMessage.purpose == "reply")
            .order_by(OutboundMessage.id)
        ).all()
    )


@pytest.mark.parametrize(
    ("phone", "text", "expected"),
    [
        (FARMER, "PRICE MAIZE NAKURU", "Maize"),
        (FARMER, "price maiz nakru", "Maize"),
        (FARMER, "  Price,  MAIZE  ", "Maize"),
        (SWAHILI, "BEI MAHINDI", "Mahindi"),
        ("+221770000002", "PRIX MIL KAOLACK", "Mil"),
        (SENEGAL, "NJEG DUGUB", "Dugub"),
        (FARMER, "SOKO PRICE BEANS ELDORET", "Beans"),
        (FARMER, "STD MAIZE", "EAS"),
        (FARMER, "HELP", "PRICE"),
        (FARMER, "blah blah", "PRICE"),
    ],
)
def test_commands_reply_in_one_sms(client, session, phone, text, expected) -> None:
    assert send(client, phone, text).status_code == 200
    texts = replies(session, phone)
    assert len(texts) == 1 and expected in texts[0], texts
    row = session.scalar(sa.select(OutboundMessage).where(OutboundMessage.to_phone == phone))
    # STD sends every limit of the grade (safety limits never dropped): two segments at most.
    assert row.segments <= (2 if text.startswith("STD") else 1) and row.encoding == "gsm7"


def test_same_id_ten_times_is_one_message_and_one_reply(client, session) -> None:
    for _ in range(10):
        assert send(client, FARMER, "PRICE MAIZE", gateway_id="ATXid_dup").status_code == 200
    assert (
        session.scalar(
            sa.select(sa.func.count(InboundMessage.id)).where(
                InboundMessage.gateway_id == "ATXid_dup"
            )
        )
        == 1
    )
    assert len(replies(session, FARMER)) == 1


def test_stop_silences_at_once_and_is_acknowledged_once(client, session) -> None:
    send(client, SWAHILI, "SIMAMA")
    send(client, SWAHILI, "STOP")
    assert len(replies(session, SWAHILI)) == 1  # the second STOP is not acknowledged again
    send(client, SWAHILI, "BEI MAHINDI")  # issue 17: their own question is answered, with a reminder
    texts = replies(session, SWAHILI)
    assert "START" in "\n".join(texts[1:]) and "Mahindi" in "\n".join(texts[1:])
    contact = session.scalar(sa.select(Contact).where(Contact.phone == SWAHILI))
    assert contact.consent == "withdrawn"
    before = len(texts)
    send(client, SWAHILI, "START")
    send(client, SWAHILI, "BEI MAHINDI")
    assert len(replies(session, SWAHILI)) == before + 2


def test_sub_and_unsub(client, session) -> None:
    send(client, FARMER, "SUB POTATOES NAIROBI")
    contact = session.scalar(sa.select(Contact).where(Contact.phone == FARMER))
    def count():
        return session.scalar(
            sa.select(sa.func.count(Subscription.id)).where(Subscription.contact_id == contact.id)
        )
    assert count() == 3
    send(client, FARMER, "UNSUB POTATOES")
    assert count() == 2


def test_lang_changes_the_reply_language(client, session) -> None:
    send(client, FARMER, "LANG FR")
    contact = session.scalar(sa.select(Contact).where(Contact.phone == FARMER))
    assert contact.language == "fr"


def test_sold_records_a_sale(client, session) -> None:
    send(client, FARMER, "SOLD 10bag90 maize 4300")
    sale = session.scalar(sa.select(SaleReport).where(SaleReport.channel == "sms"))
    assert sale is not None and sale.quantity == 10 and sale.price == 4300
    assert "Thank you" in replies(session, FARMER)[-1]


def test_implausible_sale_needs_the_same_sms_twice(client, session) -> None:
    send(client, FARMER, "SOLD 10bag90 maize 430000")
    assert session.scalar(sa.select(SaleReport).where(SaleReport.channel == "sms")) is None
    send(client, FARMER, "SOLD 10bag90 maize 430000")
    assert session.scalar(sa.select(SaleReport).where(SaleReport.channel == "sms")) is not None


def test_reporter_price_goes_pending_or_published(client, session) -> None:
    send(client, REPORTER, "P maize nakuru 4300/bag90")
    row = session.scalar(sa.select(PriceObservation).where(PriceObservation.source == "sms"))
    assert row is not None and row.status in ("approved", "pending")
    send(client, FARMER, "P maize nakuru 4300/bag90")
    assert "registered price reporters" in replies(session, FARMER)[-1]


def test_unknown_text_stops_getting_replies(client, session) -> None:
    for _ in range(8):
        send(client, "+254711555666", "asdf qwer")
    assert 1 <= len(replies(session, "+254711555666")) <= 4


def test_numbers_outside_allowed_prefixes_get_no_reply(client, session) -> None:
    send(client, "+12025550123", "HELP")
    assert replies(session, "+12025550123") == []
    assert (
        session.scalar(sa.select(InboundMessage).where(InboundMessage.from_phone == "+12025550123"))
        is not None
    )


def test_automated_messages_get_no_reply(client, session) -> None:
    send(client, FARMER, "Auto-reply: I am away")
    assert replies(session, FARMER) == []


@pytest.mark.parametrize(
    "fields", [{}, {"from": "x", "id": "1", "text": "HELP"}, {"from": FARMER, "text": "HELP"}]
)
def test_bad_callbacks_answer_200_and_store_nothing(client, session, fields) -> None:
    before = session.scalar(sa.select(sa.func.count(InboundMessage.id)))
    assert client.post("/at/sms", data=fields).status_code == 200
    assert session.scalar(sa.select(sa.func.count(InboundMessage.id))) == before


def test_delivery_callback_answers_200_for_unknown_ids(client) -> None:
    assert (
        client.post(
            "/at/delivery", data={"id": "nope", "status": "Success", "phoneNumber": FARMER}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("phone", "texts"),
    [
        ("+221770000002", ["ABO MIL KAOLACK", "DESABO MIL", "LANGUE WO", "AIDE"]),
        ("+221770000001", ["BINDU DUGUB", "NDIMBAL", "NJEG GERTE TOUBA"]),
        (SWAHILI, ["JIUNGE MAHINDI", "ONDOA MAHINDI", "KIWANGO MAHINDI", "MSAADA", "LUGHA EN"]),
        (FARMER, ["SUBSCRIBE BEANS", "UNSUB BEANS", "GRADE MAIZ", "LANG SWAHILI"]),
    ],
)
def test_commands_in_each_language_each_get_one_reply(client, session, phone, texts) -> None:
    for text in texts:
        send(client, phone, text)
    answers = replies(session, phone)
    assert len(answers) == len(texts), answers
    rows = session.scalars(sa.select(OutboundMessage).where(OutboundMessage.to_phone == phone)).all()
    # A grade (STD) carries all its limits, safety ones included: two segments at most.
    assert all(row.segments <= (2 if "EAS 2:2017" in row.text else 1) and row.encoding == "gsm7" for row in rows)
