"""Daily and weekly bulletins: one SMS per subscriber, one segment, never twice."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from smsgw.config import LANGUAGES
from smsgw.messaging.encoding import encode_for_sms
from smsgw.models import (
    BulletinRun,
    Contact,
    Market,
    OutboundMessage,
    PriceObservation,
    Subscription,
)
from smsgw.services.bulletin_texts import daily_text, weekly_text
from smsgw.services.bulletins import Policy, due_runs, run_bulletin

TODAY = dt.date.today()


def _subscribers(session) -> list[Contact]:
    return list(
        session.scalars(
            sa.select(Contact).where(sa.exists().where(Subscription.contact_id == Contact.id))
        ).all()
    )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_demo_bulletins_fit_one_segment_in_every_language(session, lang) -> None:
    composed = 0
    for contact in _subscribers(session):
        contact.language = lang
        for compose in (daily_text, weekly_text):
            text = compose(session, contact, TODAY, 7)
            if text is None:
                continue
            encoded = encode_for_sms(text, lang)
            assert encoded.encoding == "gsm7" and encoded.segments == 1, text
            composed += 1
    assert composed >= 20


def _bulletins(session) -> list[OutboundMessage]:
    return list(
        session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.purpose == "bulletin")
        ).all()
    )


def test_a_run_queues_one_message_per_subscriber_and_a_second_adds_nothing(db, session) -> None:
    report = run_bulletin(db, "daily", "nakuru", TODAY, Policy())
    rows = _bulletins(session)
    assert report.messages == len(rows) > 0
    assert len({row.contact_id for row in rows}) == len(rows)
    assert all(
        row.idempotency_key == f"bulletin:daily:{TODAY.isoformat()}:{row.contact_id}"
        for row in rows
    )
    again = run_bulletin(db, "daily", "nakuru", TODAY, Policy())
    assert again.skipped_taken and len(_bulletins(session)) == len(rows)
    assert (
        session.scalar(sa.select(BulletinRun.finished_at).where(BulletinRun.kind == "daily"))
        is not None
    )


def test_an_unfinished_run_resumes_without_repeats(db, session) -> None:
    market_id = session.scalar(sa.select(Market.id).where(Market.code == "nakuru"))
    run_bulletin(db, "daily", "nakuru", TODAY, Policy())
    session.execute(
        sa.update(BulletinRun).where(BulletinRun.market_id == market_id).values(finished_at=None)
    )
    first = len(_bulletins(session))
    report = run_bulletin(db, "daily", "nakuru", TODAY, Policy())
    assert not report.skipped_taken and len(_bulletins(session)) == first


def test_dry_run_queues_nothing(db, session) -> None:
    report = run_bulletin(db, "daily", "nakuru", TODAY, Policy(), dry_run=True)
    assert report.messages > 0 and _bulletins(session) == []
    assert session.scalar(sa.select(sa.func.count(BulletinRun.id))) == 0


def test_opted_out_and_stale_are_left_out(db, session) -> None:
    subscribers = [
        c for c in _subscribers(session) if c.home_market and c.home_market.code == "nakuru"
    ]
    subscribers[0].consent = "withdrawn"
    session.flush()
    run_bulletin(db, "daily", "nakuru", TODAY, Policy())
    assert subscribers[0].id not in {row.contact_id for row in _bulletins(session)}
    # A week later with no new prices, everything is stale: nothing is sent.
    later = run_bulletin(db, "daily", "nakuru", TODAY + dt.timedelta(days=10), Policy(stale_days=7))
    assert later.messages == 0


def test_old_prices_show_their_date(session) -> None:
    contact = next(c for c in _subscribers(session) if c.language == "en")
    session.execute(
        sa.delete(PriceObservation).where(
            PriceObservation.observed_on > TODAY - dt.timedelta(days=2)
        )
    )
    text = daily_text(session, contact, TODAY, 7)
    assert text is not None and "(" in text


def test_quiet_hours_delay_sending_to_the_morning() -> None:
    market = Market(timezone="Africa/Nairobi")
    late = dt.datetime(2026, 11, 22, 20, 30, tzinfo=dt.UTC)  # 23:30 in Nairobi
    not_before = Policy().not_before(market, late)
    assert not_before.astimezone(ZoneInfo("Africa/Nairobi")) == dt.datetime(
        2026, 11, 23, 6, 0, tzinfo=ZoneInfo("Africa/Nairobi")
    )
    noon = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
    assert Policy().not_before(market, noon) == noon


def test_runs_are_due_at_each_markets_local_hour(session) -> None:
    # 06:10 in Nairobi is 03:10 UTC; Senegal (UTC+0, bulletins at 07:00) waits until 07:00 UTC.
    morning_kenya = dt.datetime(2026, 11, 23, 3, 10, tzinfo=dt.UTC)
    due = due_runs(session, morning_kenya)
    assert {m for _, m, _ in due} == {"nakuru", "eldoret", "kisumu", "nairobi-wakulima"}
    assert ("weekly", "nakuru", dt.date(2026, 11, 23)) in due  # a Monday
    morning_senegal = dt.datetime(
        2026, 11, 23, 7, 5, tzinfo=dt.UTC
    )  # their bulletin hour is 07:00
    assert {m for _, m, _ in due_runs(session, morning_senegal)} == {
        "dakar-thiaroye",
        "kaolack",
        "thies",
        "touba",
    }


def test_dst_change_keeps_the_local_hour(session) -> None:
    market = session.scalar(sa.select(Market).where(Market.code == "thies"))
    market.timezone = "Europe/Paris"  # a zone with DST, to prove the rule
    session.flush()
    before = dt.datetime(2026, 10, 24, 5, 30, tzinfo=dt.UTC)  # 07:30 CEST, Saturday
    after = dt.datetime(2026, 10, 26, 6, 30, tzinfo=dt.UTC)  # 07:30 CET, Monday
    assert ("daily", "thies", dt.date(2026, 10, 24)) in due_runs(session, before)
    assert ("daily", "thies", dt.date(2026, 10, 26)) in due_runs(session, after)
    assert not [d for d in due_runs(session, after - dt.timedelta(hours=1)) if d[1] == "thies"]


def test_bulletin_queued_before_stop_is_not_sent(db, session) -> None:
    import io

    from smsgw.messaging.drain import drain_once
    from smsgw.messaging.gateways.console import ConsoleGateway

    run_bulletin(db, "daily", "nakuru", TODAY, Policy(quiet_start=24, quiet_end=0))
    row = _bulletins(session)[0]
    session.get(Contact, row.contact_id).consent = "withdrawn"
    session.commit()
    output = io.StringIO()
    while drain_once(db, ConsoleGateway(output)).claimed:
        pass
    session.expire_all()
    assert session.get(OutboundMessage, row.id).status == "failed"
    assert session.get(OutboundMessage, row.id).last_error == "opted out"
    assert row.to_phone not in output.getvalue()
