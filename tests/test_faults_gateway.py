"""The SMS gateway down for a whole bulletin run, or failing part of the time: when it
recovers every message has gone once; permanent failures stop with their reason.

The real Africa's Talking SDK, through our gateway and drain, against the fake AT API;
the bulletin run is the real one (composed per subscriber, keyed per day).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways.africastalking import AfricasTalkingGateway
from smsgw.messaging.outbox import MAX_ATTEMPTS
from smsgw.models import Commodity, Contact, Market, OutboundMessage, Subscription
from smsgw.services.bulletins import Policy, run_bulletin
from tests.fake_at import FakeAfricasTalking

API_KEY = "test-key"
READ_TIMEOUT = 0.2
EXTRA = 40  # subscribers added to the demo's, so a run takes many requests
CHUNK = 6
TODAY = dt.date.today()
ALWAYS = Policy(quiet_start=24, quiet_end=0)  # no quiet hours: sendable at once


@pytest.fixture()
def fake() -> Iterator[FakeAfricasTalking]:
    """The fake AT; a hanging request outlasts the gateway's read timeout."""
    with FakeAfricasTalking(api_key=API_KEY, seed=3, hang_seconds=READ_TIMEOUT * 3) as fake:
        yield fake


@pytest.fixture()
def gateway(fake: FakeAfricasTalking) -> AfricasTalkingGateway:
    """The gateway pointed at the fake."""
    return AfricasTalkingGateway("sandbox", API_KEY, api_base=fake.base_url, timeout=(1.0, READ_TIMEOUT))


@pytest.fixture()
def bulletins(db, session) -> dict[int, tuple[str, str]]:
    """Queue today's Nakuru bulletin for the demo subscribers and EXTRA more: id -> (phone, text)."""
    nakuru = session.scalar(sa.select(Market).where(Market.code == "nakuru"))
    maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
    for n in range(EXTRA):
        contact = Contact(
            phone=f"+2547330{n:05d}", language=("en", "sw", "fr")[n % 3], consent="granted", home_market_id=nakuru.id
        )
        session.add(contact)
        session.flush()
        session.add(Subscription(contact_id=contact.id, commodity_id=maize.id, market_id=nakuru.id))
    session.commit()
    report = run_bulletin(db, "daily", "nakuru", TODAY, ALWAYS)
    rows = session.scalars(sa.select(OutboundMessage).where(OutboundMessage.purpose == "bulletin")).all()
    assert report.messages == len(rows) >= EXTRA
    return {row.id: (row.to_phone, row.text) for row in rows}


def _make_due(session) -> None:
    """Skip the backoff, as the clock would between drain passes."""
    session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.status == "queued")
        .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
    )
    session.commit()


def _drain_until_settled(db, session, gateway, passes: int = 40) -> int:
    """Drain pass after pass until nothing is queued; the number of passes it took."""
    for n in range(1, passes + 1):
        drain_once(db, gateway, chunk=CHUNK)
        if not session.scalar(
            sa.select(sa.func.count(OutboundMessage.id)).where(OutboundMessage.status.in_(("queued", "sending")))
        ):
            return n
        _make_due(session)
    raise AssertionError("the outbox never settled")


def _statuses(session, ids) -> dict[int, OutboundMessage]:
    session.expire_all()
    return {row.id: row for row in session.scalars(sa.select(OutboundMessage).where(OutboundMessage.id.in_(ids)))}


@pytest.mark.parametrize("mode", ["refused", "503"])
def test_gateway_down_for_a_whole_bulletin_run_then_each_subscriber_gets_one(
    db, session, fake, gateway, bulletins, mode
) -> None:
    fake.down = mode
    for _ in range(3):  # the drain keeps trying while AT is down
        stats = drain_once(db, gateway, chunk=CHUNK)
        assert stats.sent == 0 and stats.failed == 0
        _make_due(session)
    rows = _statuses(session, bulletins)
    assert {row.status for row in rows.values()} == {"queued"}
    assert all(row.attempts == 3 for row in rows.values())
    fake.down = None
    _drain_until_settled(db, session, gateway)
    rows = _statuses(session, bulletins)
    assert {row.status for row in rows.values()} == {"sent"}
    assert fake.received() == Counter(bulletins.values())


def test_five_hundreds_for_30_percent_of_requests_still_send_each_bulletin_once(
    db, session, fake, gateway, bulletins
) -> None:
    fake.error_rate = 0.3
    _drain_until_settled(db, session, gateway)
    rows = _statuses(session, bulletins)
    assert {row.status for row in rows.values()} == {"sent"}
    assert fake.received() == Counter(bulletins.values())
    assert fake.answers()["500"] >= 3 and any(row.attempts > 1 for row in rows.values())


def test_timeouts_for_30_percent_of_requests_never_repeat_a_bulletin(db, session, fake, gateway, bulletins) -> None:
    # A read timeout may or may not have sent: a bulletin is settled "unknown" rather
    # than risk a duplicate (replies are retried: tests/test_gateway_at.py).
    fake.error_rate, fake.timeout_rate = 0.15, 0.15
    _drain_until_settled(db, session, gateway)
    rows = _statuses(session, bulletins)
    timed_out = {phone for request in fake.requests if request.answer == "timeout" for phone in request.recipients}
    assert timed_out, "some requests must have timed out"
    assert {row.to_phone for row in rows.values() if row.status == "unknown"} == timed_out
    assert {row.status for row in rows.values() if row.to_phone not in timed_out} == {"sent"}
    received = fake.received()
    assert max(received.values()) == 1
    assert set(received) == {(row.to_phone, row.text) for row in rows.values() if row.status == "sent"}


def test_permanent_failures_stop_with_their_reason(db, session, fake, gateway, bulletins) -> None:
    rejected = sorted(phone for phone, _ in bulletins.values())[:2]
    fake.fail_numbers = set(rejected)
    fake.error_rate = 0.3
    _drain_until_settled(db, session, gateway)
    rows = _statuses(session, bulletins)
    failed = {row.to_phone: row for row in rows.values() if row.status == "failed"}
    assert set(failed) == set(rejected)
    assert all("InvalidPhoneNumber" in row.last_error and row.final_at is not None for row in failed.values())
    # Tried once each (a permanent answer is not retried), however many passes followed.
    asked = Counter(phone for request in fake.requests if request.answer == "201" for phone in request.recipients)
    assert all(asked[phone] == 1 for phone in rejected)


def test_a_gateway_down_past_every_retry_fails_with_the_last_reason(db, session, fake, bulletins) -> None:
    # The fake answers 503 at once; a read timeout far above any scheduling delay means no
    # answer is ever lost on a loaded machine (which would settle a bulletin "unknown"), so
    # every bulletin ends exactly one way. Timeouts have their own test above.
    gateway = AfricasTalkingGateway("sandbox", API_KEY, api_base=fake.base_url, timeout=(10.0, 30.0))
    fake.down = "503"
    passes = _drain_until_settled(db, session, gateway)
    assert passes == MAX_ATTEMPTS
    rows = _statuses(session, bulletins)
    assert {row.status for row in rows.values()} == {"failed"}
    assert {(row.attempts, row.final_at is not None) for row in rows.values()} == {(MAX_ATTEMPTS, True)}
    errors = {row.last_error for row in rows.values()}
    assert all(error.startswith("HTTP 503") for error in errors), errors
    # Each bulletin was offered exactly MAX_ATTEMPTS times, every time answered 503; none got through.
    offered = Counter(phone for request in fake.requests for phone in request.recipients)
    assert offered == Counter([phone for phone, _ in bulletins.values()] * MAX_ATTEMPTS)
    assert {request.answer for request in fake.requests} == {"503"} and fake.received() == Counter()
    requests_made = len(fake.requests)
    fake.down = None
    _make_due(session)
    assert drain_once(db, gateway, chunk=CHUNK).claimed == 0 and len(fake.requests) == requests_made
