"""Callers and drains at the same moment, on a real committed database: 50 USSD sessions
at once through a real HTTP server, and two drains side by side on one outbox.
(100 simultaneous commitments to one order: tests/test_orders_concurrency.py.)
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from smsgw import create_app
from smsgw.db import Database
from smsgw.messaging.drain import drain_once
from smsgw.messaging.outbox import SendResult, enqueue
from smsgw.models import Contact, OutboundMessage, Subscription, UssdSession
from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import AppServer

CALLERS = 50
MESSAGES = 600
PHONE = "+2547110{:05d}"
# A first-time caller: English, prices, maize, first market, subscribe.
INPUTS = ["1", "1", "1", "1", "1"]


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> Iterator[str]:
    """A seeded database of the test's own (everything here commits for real)."""
    with fresh_database(tmp_path, request.param) as url:
        yield url


def _run_together(n: int, work) -> list:
    """``work(i)`` for every i on n threads released at the same moment."""
    barrier = threading.Barrier(n)

    def start(i: int):
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(start, range(n)))


@pytest.mark.slow
def test_fifty_simultaneous_ussd_sessions(url: str) -> None:
    app = create_app({"DATABASE_URL": url, "WEBHOOK_TOKEN": ""})
    try:
        with AppServer(app) as server:

            def caller(i: int) -> list[tuple[int, str]]:
                phone, session_id = PHONE.format(i), f"crowd-{i}"
                answers = []
                texts = ["*".join(INPUTS[:k]) for k in range(len(INPUTS) + 1)]
                for text in [*texts, texts[-1]]:  # AT repeats the last hop
                    fields = {"sessionId": session_id, "phoneNumber": phone, "serviceCode": "*384#", "text": text}
                    response = requests.post(f"{server.url}/at/ussd", data=fields, timeout=60)
                    answers.append((response.status_code, response.text))
                return answers

            results = _run_together(CALLERS, caller)
    finally:
        app.extensions["smsgw.db"].dispose()
    for answers in results:
        assert all(status == 200 for status, _ in answers), answers
        bodies = [body for _, body in answers]
        assert all(body.startswith("CON ") for body in bodies[:-2]), bodies
        assert bodies[-2].startswith("END Done") and bodies[-1] == bodies[-2], bodies
    db = Database(url)
    try:
        with db.session() as session:
            phones = [PHONE.format(i) for i in range(CALLERS)]
            contacts = session.scalars(sa.select(Contact.id).where(Contact.phone.in_(phones))).all()
            subscriptions = session.scalars(
                sa.select(Subscription.contact_id).where(Subscription.contact_id.in_(contacts))
            ).all()
            sessions = session.scalars(sa.select(UssdSession.status).where(UssdSession.phone.in_(phones))).all()
    finally:
        db.dispose()
    assert len(contacts) == CALLERS
    assert sorted(subscriptions) == sorted(contacts)  # one alert each, none twice
    assert sessions == ["ended"] * CALLERS


def test_a_first_request_sent_several_times_at_once_is_answered_every_time(url: str) -> None:
    """AT may send a session's first request again before the first copy is answered."""
    app = create_app({"DATABASE_URL": url, "WEBHOOK_TOKEN": ""})
    copies = 6
    try:
        with AppServer(app) as server:
            fields = {"sessionId": "twice-at-once", "phoneNumber": PHONE.format(99), "serviceCode": "*384#",
                      "text": ""}
            answers = _run_together(copies, lambda _: requests.post(f"{server.url}/at/ussd", data=fields,
                                                                       timeout=60))
    finally:
        app.extensions["smsgw.db"].dispose()
    bodies = [answer.text for answer in answers]
    assert all(answer.status_code == 200 for answer in answers)
    assert all(body.startswith("CON ") for body in bodies) and len(set(bodies)) == 1, bodies
    db = Database(url)
    try:
        with db.session() as session:
            stored = session.scalars(sa.select(UssdSession).where(UssdSession.session_id == "twice-at-once")).all()
            assert len(stored) == 1 and stored[0].hops == copies
    finally:
        db.dispose()


class RecordingGateway:
    """Accepts everything, a little slowly, and counts what it was asked to send."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def send(self, text: str, recipients: list[str], sender_id: str | None) -> list[SendResult]:
        time.sleep(0.002)
        with self._lock:
            self.sent.update((phone, text) for phone in recipients)
        return [SendResult(phone, "sent", message_id=f"rec-{phone}-{hash(text)}") for phone in recipients]


@pytest.mark.slow
def test_two_drains_side_by_side_send_each_message_once(url: str) -> None:
    setup = Database(url)
    with setup.session() as session:
        expected = Counter()
        for n in range(MESSAGES):
            purpose = ("reply", "order", "bulletin")[n % 3]
            phone, text = f"+2547340{n:05d}", f"{purpose} {n % 60}: maize 4,300 KES"
            enqueue(session, to=phone, text=text, purpose=purpose, key=f"pair:{n}")
            expected[(phone, text)] += 1
    setup.dispose()
    gateway = RecordingGateway()

    def drain(_: int) -> int:
        db = Database(url)  # each drain with its own engine, as in its own process
        claimed = 0
        try:
            while stats := drain_once(db, gateway, batch_size=40, chunk=10):
                if not stats.claimed:
                    break
                claimed += stats.claimed
        finally:
            db.dispose()
        return claimed

    claims = _run_together(2, drain)
    assert sum(claims) == MESSAGES and min(claims) > 0, claims
    assert gateway.sent == expected
    check = Database(url)
    try:
        with check.session() as session:
            rows = session.execute(sa.select(OutboundMessage.status, OutboundMessage.attempts)).all()
    finally:
        check.dispose()
    assert Counter(rows) == Counter({("sent", 1): MESSAGES})
