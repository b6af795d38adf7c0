"""The drain writes by set: one claim, then per request one statement for the previous
request's answers and one for this request's rows, whatever the number of recipients; and
every guarantee of the row-by-row drain holds (crash marks, outcomes, pause, priority)."""
from __future__ import annotations

import datetime as dt
import decimal
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import requests
import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.messaging.drain import drain_once, paused_gateway
from smsgw.messaging.gateways.africastalking import AfricasTalkingGateway, record_status
from smsgw.messaging.outbox import NOT_YET_SENT, Queued, SendResult, claim_for_sending, enqueue_many
from smsgw.models import OutboundMessage
from tests.fake_at import FakeAfricasTalking

API_KEY = "batch-key"


class StubGateway:
    """A gateway whose answer for each recipient is chosen by the test."""

    name = "stub"

    def __init__(self, answer: Callable[[str, str], SendResult]) -> None:
        self.answer = answer
        self.requests: list[tuple[str, list[str]]] = []
        self.before_each: Callable[[str, list[str]], None] | None = None

    def send(self, text: str, recipients: list[str], sender_id: str | None) -> list[SendResult]:
        """Note the request and answer each recipient."""
        if self.before_each is not None:
            self.before_each(text, recipients)
        self.requests.append((text, list(recipients)))
        return [self.answer(text, phone) for phone in recipients]


def _sent(text: str, phone: str) -> SendResult:
    return SendResult(phone, "sent", message_id=f"ATXid_{phone}", cost="KES 0.8000")


def _queue(session, texts: dict[str, int], purpose: str = "bulletin", first: int = 0) -> list[str]:
    """``count`` recipients for each text; their phones, in order."""
    phones, messages = [], []
    n = first
    for text, count in texts.items():
        for _ in range(count):
            phone = f"+2547009{n:05d}"
            phones.append(phone)
            messages.append(Queued(phone, text, f"batch:{purpose}:{n}"))
            n += 1
    enqueue_many(session, messages, purpose=purpose)
    session.commit()
    return phones


def _rows(session) -> dict[str, OutboundMessage]:
    session.expire_all()
    rows = session.scalars(sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.like("batch:%")))
    return {row.to_phone: row for row in rows}


@pytest.fixture()
def statements(db) -> Iterator[list[str]]:
    """The SQL statements the database receives during the test (one per executemany)."""
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    yield seen
    sa.event.remove(db.engine, "before_cursor_execute", note)


def test_a_batch_is_written_by_set_not_row_by_row(db, session, statements) -> None:
    _queue(session, {"Maize 3,200": 60, "Beans 9,000": 50, "Rice 4,100": 40})
    gateway = StubGateway(_sent)
    statements.clear()
    stats = drain_once(db, gateway)
    assert (stats.claimed, stats.sent, stats.requests) == (150, 150, 3)
    writes = [s for s in statements if "UPDATE outbound_message" in s or "INSERT INTO outbound_message" in s]
    # The claim, then for each request its rows' mark and the previous request's answers.
    assert len(writes) == 1 + 2 * stats.requests
    assert len(statements) < 20  # 150 messages: nothing per message
    rows = _rows(session)
    assert Counter(row.status for row in rows.values()) == Counter({"sent": 150})
    assert all(row.gateway_message_id == f"ATXid_{phone}" for phone, row in rows.items())
    assert {(row.cost, row.cost_currency, row.last_error, row.lease_until) for row in rows.values()} == {
        (decimal.Decimal("0.8"), "KES", "", None)
    }


def test_every_outcome_of_one_request_is_written_with_its_own_values(db, session) -> None:
    text = "Prices today"
    bulletins = _queue(session, {text: 5})
    replies = _queue(session, {text: 2}, purpose="reply", first=100)
    outcomes = {
        bulletins[0]: SendResult(bulletins[0], "sent", message_id="ATXid_a", cost="KES 0.8000"),
        bulletins[1]: SendResult(bulletins[1], "sent", message_id="ATXid_b", cost="KES n/a"),
        bulletins[2]: SendResult(bulletins[2], "failed", error="403 InvalidPhoneNumber"),
        bulletins[3]: SendResult(bulletins[3], "retry", error="HTTP 500"),
        bulletins[4]: SendResult(bulletins[4], "maybe", error="ReadTimeout"),
        replies[0]: SendResult(replies[0], "maybe", error="ReadTimeout"),
        replies[1]: SendResult(replies[1], "sent", message_id=None),
    }
    gateway = StubGateway(lambda _, phone: outcomes[phone])
    before = utcnow()
    stats = drain_once(db, gateway)
    assert (stats.requests, stats.sent, stats.retried, stats.failed) == (1, 3, 2, 2)
    rows = _rows(session)
    first, unreadable, failed, retried, unknown = (rows[phone] for phone in bulletins)
    assert (first.status, first.gateway_message_id, first.cost, first.cost_currency) == (
        "sent", "ATXid_a", decimal.Decimal("0.8"), "KES"
    )
    assert (unreadable.status, unreadable.gateway_message_id, unreadable.cost) == ("sent", "ATXid_b", None)
    assert (failed.status, failed.last_error) == ("failed", "403 InvalidPhoneNumber") and failed.final_at >= before
    assert (retried.status, retried.last_error, retried.attempts) == ("queued", "HTTP 500", 1)
    assert dt.timedelta(seconds=15) <= retried.next_attempt_at - before <= dt.timedelta(seconds=31)
    assert (unknown.status, unknown.last_error) == ("unknown", "ReadTimeout") and unknown.final_at >= before
    lost_reply, reply = rows[replies[0]], rows[replies[1]]
    assert (lost_reply.status, lost_reply.last_error) == ("queued", "ReadTimeout")
    assert (reply.status, reply.gateway_message_id, reply.sent_at >= before) == ("sent", None, True)
    assert {row.lease_until for row in rows.values()} == {None}


def test_only_the_request_in_flight_lacks_the_not_yet_sent_mark(db, session) -> None:
    texts = {"Beans 9,000": 3, "Maize 3,200": 3, "Rice 4,100": 3}  # the claim's order
    _queue(session, texts)
    seen: list[set[str]] = []
    gateway = StubGateway(_sent)

    def look(text: str, recipients: list[str]) -> None:
        with db.session() as other:
            rows = other.execute(sa.select(OutboundMessage.text, OutboundMessage.status, OutboundMessage.last_error))
            seen.append({f"{row.text}:{row.status}:{row.last_error}" for row in rows})

    gateway.before_each = look
    drain_once(db, gateway)
    beans, maize, rice = (f"{text}:" for text in texts)
    # What a crash during each request would leave: the earlier requests recorded, this
    # one's rows in doubt (unmarked), the later ones marked as never handed over.
    assert seen == [
        {f"{beans}sending:", f"{maize}sending:{NOT_YET_SENT}", f"{rice}sending:{NOT_YET_SENT}"},
        {f"{beans}sent:", f"{maize}sending:", f"{rice}sending:{NOT_YET_SENT}"},
        {f"{beans}sent:", f"{maize}sent:", f"{rice}sending:"},
    ]


def test_a_refusal_mid_batch_gives_back_every_unsent_row_with_no_attempt_spent(db, session) -> None:
    # In the claim's order: beans go through, then the gateway refuses the maize request.
    phones = _queue(session, {"Beans 9,000": 2, "Maize 3,200": 2, "Rice 4,100": 2})

    def answer(text: str, phone: str) -> SendResult:
        if text.startswith("Beans"):
            return _sent(text, phone)
        return SendResult(phone, "pause", error="HTTP 401: The supplied authentication is invalid")

    stats = drain_once(db, StubGateway(answer))
    assert (stats.sent, stats.requests) == (2, 2) and stats.paused.startswith("HTTP 401")
    rows = _rows(session)
    assert [rows[phone].status for phone in phones] == ["sent"] * 2 + ["queued"] * 4
    given_back = [rows[phone] for phone in phones[2:]]
    assert {(r.attempts, r.last_error, r.claimed_by, r.lease_until) for r in given_back} == {(0, "", None, None)}
    assert paused_gateway(session)["reason"].startswith("HTTP 401")


def test_the_drains_claim_puts_replies_first_and_identical_texts_together(db, session) -> None:
    _queue(session, {"b text": 2, "a text": 2})
    _queue(session, {"reply": 1}, purpose="reply", first=50)
    _queue(session, {"b text": 1}, first=60)
    claimed = claim_for_sending(session, 10)
    session.commit()
    assert [row.text for row in claimed] == ["reply", "a text", "a text", "b text", "b text", "b text"]
    rows = _rows(session)
    assert {(row.status, row.last_error, row.attempts) for row in rows.values()} == {("sending", NOT_YET_SENT, 1)}


def test_the_gateway_sends_every_request_through_its_one_http_session(monkeypatch) -> None:
    def one_off(*args, **kwargs):
        raise AssertionError("the SDK's one-off requests.post was used")

    with FakeAfricasTalking(api_key=API_KEY) as fake:
        gateway = AfricasTalkingGateway("sandbox", API_KEY, api_base=fake.base_url)
        monkeypatch.setattr(requests, "post", one_off)
        for n in range(3):
            assert [r.outcome for r in gateway.send(f"Maize {n}", ["+254700000301"], None)] == ["sent"]
        # The recorder still sees the status of a refused request (the pause depends on it).
        wrong = AfricasTalkingGateway("sandbox", "wrong", api_base=fake.base_url)
        assert [r.outcome for r in wrong.send("Maize", ["+254700000301"], None)] == ["pause"]
        assert len(fake.requests) == 4


def test_the_recorder_keeps_the_sdks_callback_form() -> None:
    class Service:
        def _Service__make_post_request(self, *args):
            raise AssertionError("the session sends, not the helper")

    service = Service()
    got = []
    with FakeAfricasTalking(api_key=API_KEY) as fake, requests.Session() as http:
        recorder = record_status(service, "post", http)
        assert recorder is not None
        answer = recorder(fake.base_url + "/version1/user", {"apiKey": API_KEY}, {}, None, callback=got.append)
        assert answer is None and [r.status_code for r in got] == [404] and recorder.status == 404


def test_the_gateways_session_takes_the_environments_proxy_settings(monkeypatch) -> None:
    from smsgw.messaging.gateways.africastalking import _session_for

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert _session_for("https://api.africastalking.com/version1/messaging").proxies == {
        "https": "http://proxy.example:3128"
    }
    monkeypatch.setenv("NO_PROXY", "api.africastalking.com")
    assert _session_for("https://api.africastalking.com/version1/messaging").proxies == {}
    # Certificates are always checked: against the environment's CA bundle when it names one.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert _session_for("https://api.africastalking.com/version1/messaging").verify is True
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ours.pem")
    assert _session_for("https://api.africastalking.com/version1/messaging").verify == "/etc/ssl/certs/ours.pem"
