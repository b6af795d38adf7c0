"""Hostile and broken input on every webhook and parser (property-based, hypothesis).

Arbitrary unicode, huge fields, missing fields, ``*`` runs, control characters, SQL and
HTML fragments. Whatever arrives: never a 500; a request that is refused changes no
data; a person who sent something gets a clear answer (a USSD screen, not the apology;
an SMS reply queued).

Each example runs inside a savepoint of the test's transaction, rolled back after it,
so examples neither see nor limit each other (the per-number caps start afresh).
"""
from __future__ import annotations

import decimal
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsgw.conversations.sms.intake import _AUTOMATED
from smsgw.conversations.sms.keywords import COMMANDS
from smsgw.conversations.sms.parser import load_vocabulary, parse
from smsgw.conversations.ussd.engine import MAX_SCREEN, split_path
from smsgw.conversations.ussd.layout import parse_amount
from smsgw.conversations.ussd.session import apology
from smsgw.db import Base, utcnow
from smsgw.messaging.outbox import enqueue
from smsgw.models import Contact, InboundMessage, OutboundMessage, UssdSession
from smsgw.phones import InvalidPhone, normalize_phone

SQL = [
    "'; DROP TABLE contact; --", "1' OR '1'='1", '" OR 1=1 --', "1; DELETE FROM outbound_message",
    "%' UNION SELECT phone FROM contact --", "\\'; --",
]
HTML = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "&lt;b&gt;&amp;",
    "</textarea><svg/onload=alert(1)>",
]
CONTROL = ["\x00", "\x07", "\x1b[2J", "\r\n", "\u202e", "\ufeff", "\u200b", "\x7f", "\t"]
STARS = ["*", "**", "*" * 60, "1**2", "*1*", "#", "00", "0", "*#", "99"]
ODD = ["🙂", "ñ", "中文", "مرحبا", "e\u0301", "𝟘𝟙", "²", "٣", "½", "1e9999", "NaN", "-5", "0.0001", "1,5", "4 300"]
HUGE = ["9" * 5000, "x" * 100_000, "*" * 20_000]

fragment = st.one_of(st.sampled_from(SQL + HTML + CONTROL + STARS + ODD), st.text(max_size=12))
junk = st.one_of(
    st.text(max_size=120),
    st.lists(fragment, max_size=10).map("".join),
    st.sampled_from(["", " ", *HUGE]),
)
key_input = st.one_of(
    st.sampled_from(["1", "2", "3", "4", "5", "6", "7", "9", "0", "00", "10", "4300"]),
    st.text("0123456789.,# ", max_size=8),
    fragment,
)
ussd_text = st.one_of(st.lists(key_input, max_size=14).map("*".join), junk)
ALLOWED_PHONES = ["+254700000001", "+254700000002", "+221770000001", "+254711222333", "0712345678", "254700000003"]
phone = st.one_of(
    st.sampled_from(ALLOWED_PHONES + ["+12025550123", "+447700900123", "+999", "+2547", "tel:+254700000001"]), junk
)
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _fields(**strategies) -> st.SearchStrategy[dict[str, str]]:
    """Forms where every field may be missing."""
    return st.fixed_dictionaries({}, optional=strategies)


@contextmanager
def _example(connection: sa.Connection) -> Iterator[None]:
    """Run one example in a savepoint that is rolled back after it."""
    savepoint = connection.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()


def _fingerprint(connection: sa.Connection) -> tuple:
    """Row counts of every table, and the states a callback may move."""
    counts = tuple(
        connection.scalar(sa.select(sa.func.count()).select_from(table)) for table in Base.metadata.sorted_tables
    )
    states = connection.execute(
        sa.select(OutboundMessage.id, OutboundMessage.status).order_by(OutboundMessage.id)
    ).all()
    sessions = connection.execute(
        sa.select(UssdSession.id, UssdSession.status, UssdSession.hops).order_by(UssdSession.id)
    ).all()
    people = connection.execute(
        sa.select(Contact.id, Contact.consent, Contact.language, Contact.name).order_by(Contact.id)
    ).all()
    return counts, tuple(states), tuple(sessions), tuple(people)


def _valid(raw: str | None) -> str | None:
    try:
        return normalize_phone(raw or "", "KE")
    except InvalidPhone:
        return None


def _post(client, path: str, fields: dict[str, str]):
    response = client.post(path, data=fields)
    assert response.status_code != 500
    return response


# ------------------------------------------------------------------ webhooks

@EXAMPLES
@given(
    fields=_fields(
        sessionId=st.one_of(st.sampled_from(["h-1", "h-2"]), junk),
        phoneNumber=phone,
        text=ussd_text,
        serviceCode=junk,
        networkCode=junk,
    )
)
def test_ussd_hop_always_answers_a_screen(client, connection, fields) -> None:
    with _example(connection):
        before = _fingerprint(connection)
        response = _post(client, "/at/ussd", fields)
        if response.status_code == 413:  # a body no handset can send: refused whole
            assert _fingerprint(connection) == before
            return
        body = response.get_data(as_text=True)
        assert response.status_code == 200 and response.mimetype == "text/plain"
        assert body[:4] in ("CON ", "END ") and len(body) <= 4 + MAX_SCREEN, body
        caller = _valid(fields.get("phoneNumber"))
        if caller is None or not (fields.get("sessionId") or "").strip():
            assert body == apology("en") and _fingerprint(connection) == before
        else:
            # The apology comes in the caller's language: none of them may reach a person.
            assert body not in APOLOGIES.values(), f"a person got the apology for {fields!r}"


# The apology as each language's catalog words it (written out, not read from the code).
APOLOGIES = {
    "en": "END Sorry, something went wrong. Please dial again.",
    "fr": "END Désolé, une erreur est survenue. Recomposez le code.",
    "sw": "END Samahani, kuna hitilafu. Tafadhali piga tena.",
    "wo": "END Baal nu, am na njumte. Jéemaatal.",
}
CALLERS = {"en": "+254700000001", "sw": "+254700000002", "fr": "+221770000002", "wo": "+221770000001"}


def test_the_apology_is_each_languages_own_text() -> None:
    assert {lang: apology(lang) for lang in APOLOGIES} == APOLOGIES


@pytest.mark.parametrize("lang", sorted(CALLERS))
@pytest.mark.parametrize("text", ["", "1", "1*1", "1*1*1", "9", "*", "1**2", "0", "x" * 600])
def test_seeded_callers_of_every_language_get_a_screen_not_the_apology(client, connection, lang, text) -> None:
    """Wanjiru (en), Akinyi (sw), a French and a Wolof caller: a failing hop would show
    each of them the apology in their own language, which is what this looks for."""
    phone = CALLERS[lang]
    assert connection.scalar(sa.select(Contact.language).where(Contact.phone == phone)) == lang
    fields = {"sessionId": f"lang-{lang}-{len(text)}", "phoneNumber": phone, "text": text, "serviceCode": "*384#"}
    response = _post(client, "/at/ussd", fields)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body[:4] in ("CON ", "END ") and len(body) <= 4 + MAX_SCREEN, body
    assert body not in APOLOGIES.values(), f"{lang} caller got the apology for {text!r}"


@EXAMPLES
@given(
    fields=_fields(
        sessionId=st.one_of(st.just("h-end"), junk),
        phoneNumber=phone,
        status=st.one_of(st.sampled_from(["Success", "Incomplete", "Failed"]), junk),
        durationInMillis=st.one_of(st.sampled_from(["4200", "²", "٣", "-1", "9" * 5000, "99999999999"]), junk),
        input=junk,
        errorMessage=junk,
        cost=junk,
    )
)
def test_ussd_end_event_never_fails(client, connection, fields) -> None:
    with _example(connection):
        before = _fingerprint(connection)
        response = _post(client, "/at/ussd/events", fields)
        assert response.status_code in (200, 413)
        if response.status_code == 413 or not (fields.get("sessionId") or "").strip():
            assert _fingerprint(connection) == before


@EXAMPLES
@given(
    fields=_fields(
        **{
            "from": phone,
            "to": junk,
            "text": junk,
            "id": st.one_of(st.just("h-sms"), junk),
            "linkId": junk,
            "date": junk,
            "networkCode": junk,
        }
    )
)
def test_inbound_sms_is_stored_and_answered_or_refused_untouched(client, connection, fields) -> None:
    with _example(connection):
        before = _fingerprint(connection)
        response = _post(client, "/at/sms", fields)
        assert response.status_code in (200, 413)
        sender, gateway_id = _valid(fields.get("from")), (fields.get("id") or "").strip()
        if response.status_code == 413 or sender is None or not gateway_id:
            assert _fingerprint(connection) == before
            return
        stored = connection.execute(
            sa.select(InboundMessage.id, InboundMessage.text).where(InboundMessage.gateway_id == gateway_id[:80])
        ).one()
        replies = connection.scalars(
            sa.select(OutboundMessage.text).where(OutboundMessage.idempotency_key == f"reply:{stored.id}")
        ).all()
        person = sender.startswith(("+254", "+221")) and not _AUTOMATED.match(stored.text.strip())
        assert len(replies) == (1 if person else 0), (fields, replies)
        assert all(text.strip() for text in replies)


TEMPLATES = [
    "SOLD {a}bag90 maize {b}", "SOLD {a}kg maize {b}", "P maize nakuru {a}/bag90", "P maize nakuru {b}/kg",
    "OPEN SELL {a} MAIZE {b} 14", "OPEN SELL 10 MAIZE 4300 {a}", "OPEN OFFER {a} {b}", "OPEN OFFER 1 {a} {b}",
    "JOIN 1 {a}", "JOIN {a} {b}", "PRICE MAIZE {a}", "BEI MAHINDI {b}",
]
number = st.one_of(
    st.from_regex(r"-?[0-9]{0,10}([.,][0-9]{1,6})?(e-?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["NaN", "sNaN", "Infinity", "-inf", "1e30", "1E+999999", "0", "00", "99999999999999999"]),
)


@EXAMPLES
@given(
    template=st.sampled_from(TEMPLATES), a=number, b=number, sender=st.sampled_from(["+254700000001", "+254700000010"])
)
def test_commands_with_any_numbers_get_a_reply_never_a_500(client, connection, template, a, b, sender) -> None:
    """Farmers (and the reporter +254700000010) typing amounts that are odd or too small to store."""
    with _example(connection):
        text = template.format(a=a, b=b)
        response = _post(client, "/at/sms", {"from": sender, "text": text, "id": "h-num", "to": "22384"})
        assert response.status_code == 200
        stored = connection.scalar(sa.select(InboundMessage.id).where(InboundMessage.gateway_id == "h-num"))
        replies = connection.scalars(
            sa.select(OutboundMessage.text).where(OutboundMessage.idempotency_key == f"reply:{stored}")
        ).all()
        assert len(replies) == 1 and replies[0].strip(), (text, replies)


@pytest.mark.parametrize("text", ["P maize nakuru 0.001/bag90", "SOLD 0.0001kg maize 4300", "SOLD 10bag90 maize 0.004"])
def test_amounts_too_small_to_store_are_refused_with_a_reply(client, connection, text) -> None:
    response = _post(client, "/at/sms", {"from": "+254700000010", "text": text, "id": f"tiny-{text}"})
    assert response.status_code == 200
    stored = connection.scalar(sa.select(InboundMessage.id).where(InboundMessage.gateway_id == f"tiny-{text}"))
    assert connection.scalar(
        sa.select(OutboundMessage.text).where(OutboundMessage.idempotency_key == f"reply:{stored}")
    )


@EXAMPLES
@given(
    fields=_fields(
        id=st.one_of(st.just("ATXid_hostile"), junk),
        status=st.one_of(st.sampled_from(["Success", "Sent", "Failed", "Rejected", "Buffered"]), junk),
        phoneNumber=phone,
        networkCode=junk,
        failureReason=junk,
        retryCount=st.one_of(st.sampled_from(["0", "²", "-3", "9" * 5000]), junk),
    )
)
def test_delivery_report_never_fails_and_never_moves_backwards(client, connection, db, fields) -> None:
    with _example(connection):
        with db.sessionmaker() as session:
            message = enqueue(session, to="+254700000001", text="hello", purpose="reply", key="hostile:dr")
            message.status, message.gateway_message_id, message.sent_at = "delivered", "ATXid_hostile", utcnow()
            session.commit()
        before = _fingerprint(connection)
        response = _post(client, "/at/delivery", fields)
        assert response.status_code in (200, 413)
        if response.status_code == 413 or not (fields.get("id") or "").strip():
            assert _fingerprint(connection) == before
        status = connection.scalar(sa.select(OutboundMessage.status).where(OutboundMessage.id == message.id))
        assert status == "delivered"  # a delivered message stays delivered, whatever comes


# ------------------------------------------------------------------ parsers

@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=junk)
def test_sms_parser_reads_anything(session, text: str) -> None:
    parsed = parse(text, _vocabulary(session), ("SOKO", "SMSGW"))
    assert parsed.command in COMMANDS
    assert parsed.quantity is None or parsed.quantity > 0
    assert parsed.price is None or parsed.price > 0


_VOCAB: dict[int, object] = {}


def _vocabulary(session):
    return _VOCAB.setdefault(id(session), load_vocabulary(session))


@settings(max_examples=150, deadline=None, database=None)
@given(text=ussd_text)
def test_split_path_splits_on_stars_only(text: str) -> None:
    parts = split_path(text)
    assert all("*" not in part and part == part.strip() for part in parts)
    assert parts == ([] if not text.strip() else [p.strip() for p in text.strip().split("*")])


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.one_of(st.text("0123456789.,- e", max_size=16), junk))
def test_parse_amount_is_a_plain_keypad_number_or_none(text: str) -> None:
    amount = parse_amount(text)
    if amount is None:
        return
    assert amount.is_finite() and amount >= 0
    # What a keypad can type and our Numeric columns hold without rounding it to 0.
    assert amount == amount.quantize(decimal.Decimal("0.01")) and amount < 10**12


@settings(max_examples=200, deadline=None, database=None)
@given(raw=st.one_of(phone, st.from_regex(r"\+?(254|221|0)?7[0-9]{8}", fullmatch=True)))
def test_normalize_phone_gives_e164_or_refuses(raw: str) -> None:
    try:
        e164 = normalize_phone(raw, "KE")
    except InvalidPhone:
        return
    assert re.fullmatch(r"\+[1-9][0-9]{6,14}", e164)
    assert normalize_phone(e164, "KE") == e164


@pytest.mark.parametrize("path", ["/at/ussd", "/at/sms", "/at/delivery", "/at/ussd/events"])
def test_a_body_no_gateway_sends_is_refused_without_a_500(client, connection, path) -> None:
    before = _fingerprint(connection)
    response = client.post(
        path,
        data={
            "sessionId": "big",
            "phoneNumber": "+254700000001",
            "from": "+254700000001",
            "id": "big",
            "text": "1" * 2_000_000,
        },
    )
    assert response.status_code == 413
    assert _fingerprint(connection) == before
