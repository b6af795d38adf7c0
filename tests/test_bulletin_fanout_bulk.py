"""Bulletin fan-out in bulk: plain rows in, one INSERT per batch out, nobody lost or doubled."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.messaging.encoding import encode_for_sms
from smsgw.messaging.outbox import Queued, enqueue, enqueue_many
from smsgw.models import BulletinRun, Contact, Market, OutboundMessage, PriceObservation, Subscription
from smsgw.services import bulletins
from smsgw.services.bulletin_texts import daily_text
from smsgw.services.bulletins import Policy, run_bulletin

TODAY = dt.date.today()
# Quiet hours that never start: the bulletins are due now whatever the clock says.
NOW = Policy(quiet_start=24, quiet_end=0)


def _market(session, code: str) -> Market:
    return session.scalars(sa.select(Market).where(Market.code == code)).one()


def _priced_crops(session, market: Market) -> list[int]:
    """Ids of the crops with a price at ``market``, in id order."""
    return list(session.scalars(
        sa.select(PriceObservation.commodity_id)
        .where(PriceObservation.market_id == market.id)
        .distinct()
        .order_by(PriceObservation.commodity_id)
    ))


def _farmer(session, n: int, language: str, home: Market | None, alerts: list[tuple[int, Market]]) -> Contact:
    contact = Contact(
        phone=f"+2547355{n:05d}", language=language, home_market_id=home.id if home else None, consent="granted"
    )
    session.add(contact)
    session.flush()
    for commodity_id, market in alerts:
        session.add(Subscription(contact_id=contact.id, commodity_id=commodity_id, market_id=market.id))
    session.flush()
    return contact


def _queued(session, kind: str = "daily", day: dt.date = TODAY) -> dict[int, OutboundMessage]:
    rows = session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like(f"bulletin:{kind}:{day.isoformat()}:%"))
    ).all()
    assert len({row.idempotency_key for row in rows}) == len(rows)
    return {row.contact_id: row for row in rows}


def test_small_batches_queue_everyone_once_with_the_text_their_own_contact_gets(db, session, monkeypatch) -> None:
    monkeypatch.setattr(bulletins, "BATCH", 3)
    nakuru = _market(session, "nakuru")
    crops = _priced_crops(session, nakuru)
    for n in range(8):
        # Alerts in different orders and languages: the text follows both.
        order = crops[n % len(crops):] + crops[: n % len(crops)]
        _farmer(session, n, ("en", "sw")[n % 2], nakuru, [(crop, nakuru) for crop in order[:3]])
    session.commit()
    report = run_bulletin(db, "daily", "nakuru", TODAY, NOW)
    queued = _queued(session)
    assert report.messages == len(queued) >= 8
    for contact_id, row in queued.items():
        contact = session.get_one(Contact, contact_id)
        # Alerts in the order they were made (the relationship has no order of its own).
        contact.subscriptions.sort(key=lambda sub: sub.id)
        expected = daily_text(session, contact, TODAY, NOW.max_age())
        assert expected is not None and row.text == encode_for_sms(expected, contact.language).text
        assert (row.to_phone, row.purpose, row.status) == (contact.phone, "bulletin", "queued")
    again = run_bulletin(db, "daily", "nakuru", TODAY + dt.timedelta(days=1), NOW)
    assert again.messages == report.messages  # the next day: everyone again, under new keys
    assert _queued(session, day=TODAY + dt.timedelta(days=1)).keys() == queued.keys()


def test_without_a_home_market_the_first_alert_decides_the_run(db, session) -> None:
    nakuru, eldoret = _market(session, "nakuru"), _market(session, "eldoret")
    crop = _priced_crops(session, nakuru)[0]
    first_eldoret = _farmer(session, 1, "en", None, [(crop, eldoret), (crop, nakuru)])
    first_nakuru = _farmer(session, 2, "en", None, [(crop, nakuru), (crop, eldoret)])
    session.commit()
    run_bulletin(db, "daily", "nakuru", TODAY, NOW)
    in_nakuru = _queued(session)
    assert first_nakuru.id in in_nakuru and first_eldoret.id not in in_nakuru
    run_bulletin(db, "daily", "eldoret", TODAY, NOW)
    assert first_eldoret.id in _queued(session)


def test_the_daily_cap_leaves_out_who_had_enough_bulletins_and_a_dry_run_counts_them(db, session) -> None:
    nakuru = _market(session, "nakuru")
    crops = _priced_crops(session, nakuru)
    full = _farmer(session, 1, "en", nakuru, [(crops[0], nakuru)])
    one_short = _farmer(session, 2, "en", nakuru, [(crops[0], nakuru)])
    for n in range(2):
        enqueue(session, to=full.phone, text="Alert", purpose="bulletin", key=f"t:cap:full:{n}", contact_id=full.id)
    enqueue(session, to=one_short.phone, text="Alert", purpose="bulletin", key="t:cap:short", contact_id=one_short.id)
    # Bulletins of two days ago do not count.
    old = enqueue(session, to=one_short.phone, text="Old", purpose="bulletin", key="t:cap:old", contact_id=one_short.id)
    old.created_at = utcnow() - dt.timedelta(days=2)
    session.commit()
    policy = Policy(quiet_start=24, quiet_end=0, daily_cap=2)
    dry = run_bulletin(db, "daily", "nakuru", TODAY, policy, dry_run=True)
    report = run_bulletin(db, "daily", "nakuru", TODAY, policy)
    queued = _queued(session)
    assert one_short.id in queued and full.id not in queued
    assert dry.messages == report.messages + 1


def test_composers_get_a_read_only_stand_in_once_per_language_home_and_alerts(db, session, monkeypatch) -> None:
    monkeypatch.setattr(bulletins, "BATCH", 2)
    nakuru = _market(session, "nakuru")
    crops = _priced_crops(session, nakuru)
    for n in range(6):
        _farmer(session, n, ("fr", "wo")[n % 2], nakuru, [(crops[0], nakuru), (crops[1], nakuru)])
    session.commit()
    seen: list[tuple[str, str | None, tuple[tuple[int, str], ...]]] = []

    def compose(session, who, day, max_age, cache) -> str | None:
        alerts = tuple((alert.commodity.id, alert.market.code) for alert in who.subscriptions)
        assert all(alert.commodity_id == alert.commodity.id for alert in who.subscriptions)
        seen.append((who.language, who.home_market.code if who.home_market else None, alerts))
        return f"Hello {who.language}" if who.language != "wo" else None

    report = run_bulletin(db, "daily", "nakuru", TODAY, NOW, composers={"daily": compose})
    assert len(seen) == len(set(seen))
    assert ("fr", "nakuru", ((crops[0], "nakuru"), (crops[1], "nakuru"))) in seen
    queued = _queued(session)
    assert {row.text for row in queued.values()} >= {"Hello fr"} and "Hello wo" not in {r.text for r in queued.values()}
    assert report.messages == len(queued) and report.by_language.get("wo") is None


def test_enqueue_many_takes_a_large_call_and_skips_keys_seen_before_or_twice(session) -> None:
    later = utcnow() + dt.timedelta(hours=1)
    enqueue(session, to="+254700000301", text="Kept", purpose="bulletin", key="t:bulk:0")
    messages = [Queued(f"+2547356{n:05d}", f"Maize {n % 7}", f"t:bulk:{n}", "en", None) for n in range(1_200)]
    messages.append(Queued("+254709999900", "To the simulator", "t:bulk:sim", "en", None))
    messages.append(Queued("+254700000302", "Twice in one call", "t:bulk:5", "en", None))
    enqueue_many(session, messages, purpose="bulletin", sender_id="SOKO", not_before=later)
    rows = {
        row.idempotency_key: row
        for row in session.scalars(
            sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like("t:bulk:%"))
        )
    }
    assert len(rows) == 1_201
    assert (rows["t:bulk:0"].text, rows["t:bulk:0"].sender_id) == ("Kept", None)
    assert rows["t:bulk:5"].to_phone == "+254735600005"
    row = rows["t:bulk:1199"]
    assert (row.text, row.sender_id, row.priority, row.status, row.attempts) == ("Maize 2", "SOKO", 5, "queued", 0)
    assert row.next_attempt_at == later and row.final_at is None and row.encoding == "gsm7"
    assert rows["t:bulk:sim"].status == "simulated" and rows["t:bulk:sim"].final_at is not None


@pytest.mark.parametrize("lang", ["fr", "sw"])
def test_enqueue_many_encodes_each_text_for_its_language(session, lang) -> None:
    text = "Mil \u00e0 Thi\u00e8s \u201c3200\u201d \u0119"
    enqueue_many(session, [Queued("+221770000301", text, f"t:lang:{lang}", lang, None)], purpose="reply")
    row = session.scalars(sa.select(OutboundMessage).where(OutboundMessage.idempotency_key == f"t:lang:{lang}")).one()
    expected = encode_for_sms(text, lang)
    assert (row.text, row.encoding, row.segments, row.priority) == (expected.text, expected.encoding, 1, 0)


def test_a_run_stopped_between_batches_keeps_its_batches_and_resumes_without_repeats(db, session, monkeypatch) -> None:
    monkeypatch.setattr(bulletins, "BATCH", 2)
    nakuru = _market(session, "nakuru")
    crop = _priced_crops(session, nakuru)[0]
    for n in range(5):
        _farmer(session, n, "en", nakuru, [(crop, nakuru)])
    session.commit()

    def stop() -> None:
        raise RuntimeError("scheduler stopped")

    with pytest.raises(RuntimeError):
        run_bulletin(db, "daily", "nakuru", TODAY, NOW, pause=stop)
    assert len(_queued(session)) == 2  # the first batch, committed before the pause
    run = session.scalars(sa.select(BulletinRun).where(BulletinRun.market_id == nakuru.id)).one()
    assert run.finished_at is None
    report = run_bulletin(db, "daily", "nakuru", TODAY, NOW)
    assert not report.skipped_taken and len(_queued(session)) == report.messages >= 5
    session.refresh(run)
    assert run.finished_at is not None
