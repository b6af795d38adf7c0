"""Hostile phone numbers: letters never become keypad digits, and only mobiles get SMS.

``+254 7OO OOO OO6`` (letter O) was read by phonenumbers as ``+254766666666``, another
farmer, who then got the reply; a premium-rate ``+2549...`` sender got a reply too.
"""
from __future__ import annotations

import io
import itertools

import phonenumbers
import pytest
import sqlalchemy as sa

from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways import AllowedPrefixes
from smsgw.messaging.gateways.console import ConsoleGateway
from smsgw.messaging.outbox import enqueue
from smsgw.models import Contact, InboundMessage, OutboundMessage, UssdSession
from smsgw.phones import InvalidPhone, is_mobile, normalize_phone

_ids = itertools.count()
LOOKALIKE = "+254766666666"  # what the letters O used to become
LETTERED = [
    "+254 7OO OOO OO6",  # letter O
    "+254 7oo ooo oo6",
    "+254 7ОО ООО ОО6",  # Cyrillic О
    "0712 ABC 678",
    "+2547OOOOOOO1",
    "tel:+254700000001",
    "+254700000001 ext 2",
    "+254700000001x2",
    "254-SOKO-MAIZE",
]
PREMIUM = "+254900223456"  # KE premium rate (valid, not a mobile)
NOT_MOBILE = [PREMIUM, "+254800223456", "+254202012345", "+221884123456", "+221301012345"]
MOBILES = ["+254700000001", "+254711222333", "+254110000001", "+221770000001", "+221780000001"]


@pytest.mark.parametrize("raw", LETTERED)
def test_letters_are_refused_before_parsing(raw) -> None:
    with pytest.raises(InvalidPhone, match="letters"):
        normalize_phone(raw, "KE")


def test_phonenumbers_alone_would_read_the_letters_as_digits() -> None:
    # Why the check comes before parsing: the library maps letters to the keypad.
    number = phonenumbers.parse("+254 7OO OOO OO6", "KE")
    assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == LOOKALIKE


@pytest.mark.parametrize(
    "raw",
    ["+254 712 345 678", "0712-345-678", "0712.345.678", "(0712) 345 678", "00254712345678", " +254712345678 "],
)
def test_usual_separators_are_still_accepted(raw) -> None:
    assert normalize_phone(raw, "KE") == "+254712345678"


@pytest.mark.parametrize("phone", MOBILES)
def test_mobiles_are_mobiles(phone) -> None:
    assert is_mobile(phone)


@pytest.mark.parametrize("phone", [*NOT_MOBILE, "+254 700000001", "0712345678", "+2547", "", "+254 7OO OOO OO6"])
def test_anything_else_is_not(phone) -> None:
    assert not is_mobile(phone)


def test_every_demo_number_is_a_mobile(session) -> None:
    phones = session.scalars(sa.select(Contact.phone)).all()
    assert phones and all(is_mobile(phone) for phone in phones), [p for p in phones if not is_mobile(p)]


def test_an_sms_from_a_lettered_number_reaches_no_one(client, session) -> None:
    before = session.scalar(sa.select(sa.func.count(OutboundMessage.id)))
    fields = {"from": "+254 7OO OOO OO6", "to": "22384", "text": "HELP", "id": f"num-{next(_ids)}"}
    assert client.post("/at/sms", data=fields).status_code == 200
    assert session.scalar(sa.select(InboundMessage.id).where(InboundMessage.gateway_id == fields["id"])) is None
    assert session.scalar(sa.select(sa.func.count(OutboundMessage.id))) == before
    assert session.scalar(sa.select(OutboundMessage.id).where(OutboundMessage.to_phone == LOOKALIKE)) is None


def test_a_ussd_hop_from_a_lettered_number_is_nobodys_session(client, session) -> None:
    fields = {"sessionId": f"num-{next(_ids)}", "phoneNumber": "+254 7OO OOO OO6", "serviceCode": "*384#", "text": ""}
    response = client.post("/at/ussd", data=fields)
    assert response.status_code == 200 and response.text.startswith("END ")
    assert session.scalar(sa.select(UssdSession.id).where(UssdSession.session_id == fields["sessionId"])) is None
    assert session.scalar(sa.select(UssdSession.id).where(UssdSession.phone == LOOKALIKE)) is None


@pytest.mark.parametrize("prefixes", [["+254", "+221"], []])
def test_the_gateway_sends_only_to_mobiles(prefixes) -> None:
    printed = io.StringIO()
    gateway = AllowedPrefixes(ConsoleGateway(printed), prefixes)
    results = {result.phone: result for result in gateway.send("Maize 4,300", [*NOT_MOBILE, *MOBILES], None)}
    for phone in NOT_MOBILE:
        assert (results[phone].outcome, results[phone].error) == (
            "failed",
            "not a mobile number (premium-rate, fixed line or invalid)",
        )
        assert phone not in printed.getvalue()
    assert all(results[phone].outcome == "sent" for phone in MOBILES)


def test_a_premium_rate_sender_gets_no_reply_on_the_wire(client, db, session) -> None:
    # The number is valid and inside +254, but not a mobile: no reply is even queued,
    # and anything queued for it some other way is refused by the drain.
    fields = {"from": PREMIUM, "to": "22384", "text": "HELP", "id": f"num-{next(_ids)}"}
    assert client.post("/at/sms", data=fields).status_code == 200
    keys = session.scalars(sa.select(OutboundMessage.idempotency_key).where(OutboundMessage.to_phone == PREMIUM)).all()
    assert keys == []
    enqueue(session, to=PREMIUM, text="Maize 4,300", purpose="bulletin", key="num:premium:bulletin")
    enqueue(session, to="+254700000001", text="Maize 4,300", purpose="bulletin", key="num:mobile:bulletin")
    session.commit()
    printed = io.StringIO()
    drain_once(
        db,
        AllowedPrefixes(ConsoleGateway(printed), ["+254", "+221"]),
        keys=[*keys, "num:premium:bulletin", "num:mobile:bulletin"],
    )
    session.expire_all()
    rows = session.scalars(sa.select(OutboundMessage).where(OutboundMessage.to_phone == PREMIUM)).all()
    assert len(rows) == len(keys) + 1
    assert {(row.status, row.last_error) for row in rows} == {
        ("failed", "not a mobile number (premium-rate, fixed line or invalid)")
    }
    assert PREMIUM not in printed.getvalue() and "+254700000001" in printed.getvalue()
