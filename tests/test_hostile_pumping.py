"""SMS pumping and loops: we answer only numbers in our countries, within per-number and
global hourly caps; a number that keeps sending what we cannot read stops getting
answers; and an operator hears of it when a day's SMS cost passes a threshold.
"""
from __future__ import annotations

import datetime as dt
import decimal
import io
import itertools
import logging

import pytest
import sqlalchemy as sa

from smsgw.config import load_settings
from smsgw.messaging.cost_alert import ACTION, check_daily_cost, thresholds
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways import AllowedPrefixes, build_gateway
from smsgw.messaging.gateways.console import ConsoleGateway
from smsgw.messaging.outbox import enqueue
from smsgw.models import AuditEntry, Contact, OutboundMessage, Subscription
from smsgw.scheduler import build_scheduler

_ids = itertools.count()
FARMER = "+254700000001"
FOREIGN = ["+12025550123", "+447700900123", "+23566123456", "+8823456789012", "+33612345678"]


def sms(client, phone: str, text: str) -> int:
    """Post an inbound SMS as AT does; the HTTP status."""
    return client.post("/at/sms", data={"from": phone, "to": "22384", "text": text, "id": f"pump-{next(_ids)}"}).status_code


def replies(session, phone: str | None = None) -> int:
    """Replies queued (to ``phone``, or to anyone)."""
    query = sa.select(sa.func.count(OutboundMessage.id)).where(OutboundMessage.purpose == "reply")
    if phone:
        query = query.where(OutboundMessage.to_phone == phone)
    return session.scalar(query)


@pytest.mark.parametrize("phone", FOREIGN)
@pytest.mark.parametrize("text", ["HELP", "PRICE MAIZE", "SUB MAIZE NAKURU", "STOP", "START", "zzz qqq"])
def test_numbers_outside_our_prefixes_get_nothing_and_change_nothing(client, session, phone, text) -> None:
    assert sms(client, phone, text) == 200
    assert replies(session, phone) == 0
    # No contact, no subscription: nothing will ever be sent there from this SMS.
    assert session.scalar(sa.select(Contact.id).where(Contact.phone == phone)) is None


def test_the_allowed_prefixes_are_a_setting(app, client, session) -> None:
    app.config["SMSGW_ALLOWED_PREFIXES"] = "+221"
    sms(client, FARMER, "HELP")
    sms(client, "+221770000001", "HELP")
    assert (replies(session, FARMER), replies(session, "+221770000001")) == (0, 1)


def test_the_drain_sends_nothing_outside_our_prefixes_whoever_queued_it(db, session) -> None:
    # A foreign number can still enter (USSD roaming, the admin): the gateway stops it.
    enqueue(session, to="+12025550123", text="Maize 4,300", purpose="bulletin", key="pump:foreign")
    enqueue(session, to=FARMER, text="Maize 4,300", purpose="bulletin", key="pump:home")
    session.commit()
    printed = io.StringIO()
    gateway = build_gateway(load_settings({"DATABASE_URL": db.url, "SMSGW_GATEWAY": "console"}))
    assert isinstance(gateway, AllowedPrefixes)
    gateway.inner = ConsoleGateway(printed)
    drain_once(db, gateway)
    session.expire_all()
    rows = {row.to_phone: row for row in session.scalars(sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like("pump:%")))}
    assert (rows["+12025550123"].status, rows["+12025550123"].last_error) == ("failed", "outside SMSGW_ALLOWED_PREFIXES")
    assert rows[FARMER].status == "sent"
    assert "+12025550123" not in printed.getvalue() and FARMER in printed.getvalue()


def test_one_number_gets_at_most_its_hourly_cap(app, client, session) -> None:
    cap = app.config["SMS_REPLIES_PER_HOUR"]
    for _ in range(cap + 6):
        assert sms(client, FARMER, "PRICE MAIZE") == 200
    assert replies(session, FARMER) == cap


def test_many_numbers_together_get_at_most_the_global_cap(app, client, session) -> None:
    app.config["SMS_GLOBAL_REPLIES_PER_HOUR"] = 7
    before = replies(session)
    for n in range(15):  # each number far under its own cap: a pumping attack's shape
        sms(client, f"+25471188{n:04d}", "HELP")
    assert replies(session) - before == 7


def test_a_number_that_keeps_sending_unknown_text_stops_getting_replies(app, client, session) -> None:
    allowed = app.config["SMS_UNKNOWN_REPLIES"]
    for n in range(12):
        sms(client, FARMER, f"blorp {n} xq")
    assert replies(session, FARMER) == allowed
    sms(client, FARMER, "PRICE MAIZE")  # a real request is still answered
    assert replies(session, FARMER) == allowed + 1


def test_an_unknown_sender_is_capped_for_the_day(app, client, session) -> None:
    stranger = "+254722333444"
    for _ in range(20):
        sms(client, stranger, "HELP")
    assert replies(session, stranger) == app.config["SMS_UNKNOWN_DAILY_CAP"]


def test_an_autoresponder_loop_dies_out(client, session) -> None:
    # A machine that answers each of our replies with a fresh text.
    robot = "+254733444555"
    texts = ["Auto-reply: I am away", "Thank you for your message, we will revert", "Out of office until Monday"]
    for n in range(30):
        sms(client, robot, texts[n % 3] + f" #{n}")
    assert replies(session, robot) <= 3


def test_stop_and_start_alternated_cannot_pump_acknowledgements(app, client, session) -> None:
    for _ in range(15):
        sms(client, FARMER, "STOP")
        sms(client, FARMER, "START")
    assert replies(session, FARMER) <= app.config["SMS_REPLIES_PER_HOUR"]
    assert session.scalar(sa.select(Contact.consent).where(Contact.phone == FARMER)) == "granted"
    sms(client, FARMER, "STOP")  # the opt-out itself always takes effect
    assert session.scalar(sa.select(Contact.consent).where(Contact.phone == FARMER)) == "withdrawn"


def test_a_repeated_subscription_request_adds_nothing(client, session) -> None:
    contact = session.scalar(sa.select(Contact).where(Contact.phone == FARMER))
    before = session.scalar(sa.select(sa.func.count(Subscription.id)).where(Subscription.contact_id == contact.id))
    for _ in range(5):
        sms(client, FARMER, "SUB POTATOES NAIROBI")
    assert session.scalar(sa.select(sa.func.count(Subscription.id)).where(Subscription.contact_id == contact.id)) == before + 1


# ------------------------------------------------------------------ cost alert

NOON = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # 12:00 in Nairobi


def _spend(session, amount: str, currency: str, at: dt.datetime, n: int) -> None:
    for k in range(n):
        message = enqueue(session, to=f"+2547355{k:05d}", text="x", purpose="bulletin", key=f"cost:{at.isoformat()}:{currency}:{k}")
        message.status, message.sent_at = "sent", at
        message.cost, message.cost_currency = decimal.Decimal(amount), currency
    session.flush()


def _alerts(session) -> list[AuditEntry]:
    return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.action == ACTION).order_by(AuditEntry.id)))


def test_cost_alert_fires_once_a_day_when_the_threshold_is_passed(session, caplog) -> None:
    settings = load_settings({"SMS_DAILY_COST_ALERT": "KES:10,XOF:500", "DATABASE_URL": "sqlite://"})
    _spend(session, "0.80", "KES", NOON - dt.timedelta(hours=2), 12)  # 9.60: under
    assert check_daily_cost(session, settings, now=NOON) == []
    _spend(session, "0.80", "KES", NOON - dt.timedelta(minutes=5), 1)  # 10.40: over
    with caplog.at_level(logging.WARNING, logger="smsgw.messaging.cost_alert"):
        assert len(check_daily_cost(session, settings, now=NOON)) == 1
        assert check_daily_cost(session, settings, now=NOON + dt.timedelta(hours=3)) == []
    assert "10.40 KES" in caplog.text and "passed" in caplog.text
    (entry,) = _alerts(session)
    assert (entry.actor, entry.entity_id, entry.after["spent"], entry.after["threshold"]) == ("system", "2026-11-23:KES", "10.40", "10")
    # Yesterday's spending does not count today; a new day can alert again.
    tomorrow = NOON + dt.timedelta(days=1)
    assert check_daily_cost(session, settings, now=tomorrow) == []
    _spend(session, "11", "KES", tomorrow, 1)
    assert [e.entity_id for e in check_daily_cost(session, settings, now=tomorrow)] == ["2026-11-24:KES"]


def test_cost_alert_is_off_without_a_threshold_and_ignores_malformed_items(session) -> None:
    _spend(session, "1000", "KES", NOON, 1)
    assert check_daily_cost(session, load_settings({"DATABASE_URL": "sqlite://"}), now=NOON) == []
    assert thresholds("KES:5, bogus, XOF:-1, USD:abc, kes:7") == {"KES": decimal.Decimal(7)}


def test_the_scheduler_runs_the_cost_check() -> None:
    scheduler = build_scheduler(load_settings({"DATABASE_URL": "sqlite://"}))
    job = next(job for job in scheduler.get_jobs() if job.id == "cost-alert")
    assert job.func_ref == "smsgw.scheduler:cost_alert_job"
