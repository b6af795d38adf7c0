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
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from smsgw.config import load_settings
from smsgw.db import Database
from smsgw.messaging.cost_alert import ACTION, check_daily_cost, thresholds
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways import AllowedPrefixes, build_gateway
from smsgw.messaging.gateways.console import ConsoleGateway
from smsgw.messaging.outbox import enqueue
from smsgw.models import AuditEntry, Contact, InboundMessage, OutboundMessage, Subscription
from smsgw.scheduler import build_scheduler
from tests.support.databases import BACKENDS, fresh_database

_ids = itertools.count()
FARMER = "+254700000001"
FOREIGN = ["+12025550123", "+447700900123", "+23566123456", "+8823456789012", "+33612345678"]


def sms(client, phone: str, text: str) -> int:
    """Post an inbound SMS as AT does; the HTTP status."""
    return client.post(
        "/at/sms", data={"from": phone, "to": "22384", "text": text, "id": f"pump-{next(_ids)}"}
    ).status_code


def replies(session, phone: str | None = None) -> int:
    """Replies queued (to ``phone``, or to anyone)."""
    query = sa.select(sa.func.count(OutboundMessage.id)).where(OutboundMessage.purpose == "reply")
    if phone:
        query = query.where(OutboundMessage.to_phone == phone)
    return session.scalar(query)


def notices(session, phone: str) -> int:
    """Notices that a cap stopped the answers (one per window), among the replies."""
    return session.scalar(sa.select(sa.func.count(OutboundMessage.id)).where(
        OutboundMessage.to_phone == phone, OutboundMessage.idempotency_key.like("notice:%")))


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
    rows = {
        row.to_phone: row
        for row in session.scalars(sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like("pump:%")))
    }
    assert (rows["+12025550123"].status, rows["+12025550123"].last_error) == (
        "failed",
        "outside SMSGW_ALLOWED_PREFIXES",
    )
    assert rows[FARMER].status == "sent"
    assert "+12025550123" not in printed.getvalue() and FARMER in printed.getvalue()


def test_one_number_gets_at_most_its_hourly_cap(app, client, session) -> None:
    cap = app.config["SMS_REPLIES_PER_HOUR"]
    for _ in range(cap + 6):
        assert sms(client, FARMER, "PRICE MAIZE") == 200
    # The cap's answers, and one notice saying when answers resume: never silence, never more.
    assert (replies(session, FARMER) - notices(session, FARMER), notices(session, FARMER)) == (cap, 1)


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
    assert (replies(session, stranger) - notices(session, stranger), notices(session, stranger)) == (
        app.config["SMS_UNKNOWN_DAILY_CAP"], 1)


def test_an_autoresponder_loop_dies_out(app, client, session) -> None:
    # A machine that answers each of our replies with a fresh text.
    robot = "+254733444555"
    texts = ["Auto-reply: I am away", "Thank you for your message, we will revert", "Out of office until Monday"]
    counts = []
    for n in range(30):
        sms(client, robot, texts[n % 3] + f" #{n}")
        counts.append(replies(session, robot))
    # What reads as a machine's ("Auto-reply", "Out of office") is never answered; the
    # text we cannot read gets a real answer (the help line) the first time.
    assert counts[:2] == [0, 1]
    inbound = dict(session.execute(
        sa.select(InboundMessage.id, InboundMessage.text).where(InboundMessage.from_phone == robot)
    ).all())
    keyed = {inbound[int(key.removeprefix("reply:"))]: text for key, text in session.execute(
        sa.select(OutboundMessage.idempotency_key, OutboundMessage.text).where(
            OutboundMessage.idempotency_key.in_([f"reply:{n}" for n in inbound]))
    )}
    assert keyed and all(text.startswith(texts[1]) for text in keyed), keyed
    assert keyed[texts[1] + " #1"].strip()
    # Then it dies out: at most the unknown-text allowance, plus one notice that answers are
    # capped, and nothing at all for the last dozen texts.
    assert 1 <= counts[-1] <= min(app.config["SMS_UNKNOWN_REPLIES"], app.config["SMS_UNKNOWN_DAILY_CAP"]) + 1
    assert counts[-12:] == [counts[-1]] * 12, counts


def test_stop_and_start_alternated_cannot_pump_acknowledgements(app, client, session) -> None:
    for _ in range(15):
        sms(client, FARMER, "STOP")
        sms(client, FARMER, "START")
    assert replies(session, FARMER) - notices(session, FARMER) <= app.config["SMS_REPLIES_PER_HOUR"]
    assert notices(session, FARMER) <= 1
    assert session.scalar(sa.select(Contact.consent).where(Contact.phone == FARMER)) == "granted"
    sms(client, FARMER, "STOP")  # the opt-out itself always takes effect
    assert session.scalar(sa.select(Contact.consent).where(Contact.phone == FARMER)) == "withdrawn"


def test_a_repeated_subscription_request_adds_nothing(client, session) -> None:
    contact = session.scalar(sa.select(Contact).where(Contact.phone == FARMER))
    before = session.scalar(sa.select(sa.func.count(Subscription.id)).where(Subscription.contact_id == contact.id))
    for _ in range(5):
        sms(client, FARMER, "SUB POTATOES NAIROBI")
    assert (
        session.scalar(sa.select(sa.func.count(Subscription.id)).where(Subscription.contact_id == contact.id))
        == before + 1
    )


# ------------------------------------------------------------------ cost alert

NOON = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # 12:00 in Nairobi


def _spend(session, amount: str, currency: str, at: dt.datetime, n: int) -> None:
    for k in range(n):
        message = enqueue(
            session, to=f"+2547355{k:05d}", text="x", purpose="bulletin", key=f"cost:{at.isoformat()}:{currency}:{k}"
        )
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
    assert (entry.actor, entry.entity_id, entry.after["spent"], entry.after["threshold"]) == (
        "system",
        "2026-11-23:KES",
        "10.40",
        "10",
    )
    # Yesterday's spending does not count today; a new day can alert again.
    tomorrow = NOON + dt.timedelta(days=1)
    assert check_daily_cost(session, settings, now=tomorrow) == []
    _spend(session, "11", "KES", tomorrow, 1)
    assert [e.entity_id for e in check_daily_cost(session, settings, now=tomorrow)] == ["2026-11-24:KES"]


def test_cost_alert_is_off_without_a_threshold_and_ignores_malformed_items(session) -> None:
    _spend(session, "1000", "KES", NOON, 1)
    assert check_daily_cost(session, load_settings({"DATABASE_URL": "sqlite://"}), now=NOON) == []
    assert thresholds("KES:5, bogus, XOF:-1, USD:abc, kes:7") == {"KES": decimal.Decimal(7)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_scheduler_runs_the_cost_check_and_it_alerts(tmp_path, monkeypatch, caplog, backend) -> None:
    """The job the scheduler registers, run as the scheduler runs it (from the environment,
    its own committed sessions): over the threshold it warns and audits, once a day."""
    from smsgw import scheduler

    with fresh_database(tmp_path, backend, seed=False) as url:
        environment = {
            "DATABASE_URL": url, "SMS_DAILY_COST_ALERT": "KES:10,XOF:500", "SMSGW_TIMEZONE": "Africa/Nairobi",
        }
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(scheduler, "_runtime", {})
        monkeypatch.setattr(scheduler, "_failures", {})
        db = Database(url)
        try:
            job = next(job for job in build_scheduler(load_settings()).get_jobs() if job.id == "cost-alert")
            assert (job.func_ref, job.trigger.interval) == ("smsgw.scheduler:cost_alert_job", dt.timedelta(minutes=10))
            now = dt.datetime.now(dt.UTC)
            with db.session() as session:
                _spend(session, "0.80", "KES", now, 12)  # 9.60 KES today: under
                _spend(session, "600", "USD", now, 1)  # a currency without a threshold
            with caplog.at_level(logging.WARNING):
                job.func()
            with db.session() as session:
                assert _alerts(session) == []
            with db.session() as session:
                _spend(session, "0.80", "KES", now + dt.timedelta(seconds=1), 1)  # 10.40 KES: over
            with caplog.at_level(logging.WARNING):
                job.func()
                job.func()  # the next run, the same day: no second alert
            with db.session() as session:
                alerts = [(e.actor, e.entity_id, e.after) for e in _alerts(session)]
            today = now.astimezone(ZoneInfo("Africa/Nairobi")).date().isoformat()
            after = {"date": today, "currency": "KES", "spent": "10.40", "threshold": "10"}
            assert alerts == [("system", f"{today}:KES", after)]
            warnings = [r.getMessage() for r in caplog.records if r.name == "smsgw.messaging.cost_alert"]
            assert warnings == ["SMS cost today 10.40 KES passed the alert threshold 10 KES"]
            assert not [r for r in caplog.records if r.name == "smsgw.scheduler"], caplog.text  # no job failed
        finally:
            db.dispose()
            if "db" in scheduler._runtime:
                scheduler._runtime["db"].dispose()
