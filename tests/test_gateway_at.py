"""The real Africa's Talking SDK, through our gateway and the drain, against a fake AT API."""
from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.messaging.drain import drain_once, paused_gateway
from smsgw.messaging.gateways.africastalking import AfricasTalkingGateway
from smsgw.messaging.outbox import enqueue
from smsgw.models import OutboundMessage
from smsgw.phones import mask_phone
from smsgw.services import runtime_state
from tests.fake_at import FakeAfricasTalking

API_KEY = "test-key"
READ_TIMEOUT = 0.25
PHONES = [f"+2547000002{n:02d}" for n in range(40)]


@pytest.fixture()
def fake() -> Iterator[FakeAfricasTalking]:
    """A fake AT API that hangs well past the gateway's read timeout when told to."""
    with FakeAfricasTalking(api_key=API_KEY, seed=7, hang_seconds=READ_TIMEOUT * 4) as fake:
        yield fake


@pytest.fixture()
def gateway(fake: FakeAfricasTalking) -> AfricasTalkingGateway:
    """The gateway pointed at the fake, with a short read timeout."""
    timeout = (2.0, READ_TIMEOUT)
    return AfricasTalkingGateway("sandbox", API_KEY, api_base=fake.base_url, timeout=timeout)


def _queue(session, messages: list[tuple[str, str]], sender_id: str | None = None, purpose: str = "bulletin") -> None:
    for n, (phone, text) in enumerate(messages):
        key = f"test:{n}:{phone}"
        enqueue(session, to=phone, text=text, purpose=purpose, key=key, sender_id=sender_id)
    session.commit()


def _rows(session) -> dict[str, OutboundMessage]:
    session.expire_all()
    rows = session.scalars(sa.select(OutboundMessage).where(OutboundMessage.to_phone.in_(PHONES)))
    return {row.to_phone: row for row in rows}


def _make_due(session) -> None:
    """Skip the backoff: what the clock would do between drain passes."""
    session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.status == "queued")
        .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
    )
    session.commit()


def test_identical_texts_go_in_one_request(db, session, fake, gateway) -> None:
    same = "Maize 3,200 KES/90kg at Nakuru"
    messages = [(PHONES[0], same), (PHONES[1], same), (PHONES[2], same), (PHONES[3], "Beans")]
    _queue(session, messages, sender_id="SMSGW")
    stats = drain_once(db, gateway)
    assert (stats.claimed, stats.sent, stats.requests) == (4, 4, 2)
    assert len(fake.requests) == 2
    batched = next(request for request in fake.requests if request.message == same)
    assert sorted(batched.recipients) == PHONES[:3]
    assert (batched.username, batched.api_key, batched.sender_id) == ("sandbox", API_KEY, "SMSGW")
    assert not batched.enqueue
    rows = _rows(session)
    assert {row.status for row in rows.values()} == {"sent"}
    assert all(row.gateway_message_id.startswith("ATXid_") for row in rows.values())
    assert len({row.gateway_message_id for row in rows.values()}) == 4
    costs = {(row.cost, row.cost_currency) for row in rows.values()}
    assert costs == {(decimal.Decimal("0.8"), "KES")}


def test_partial_permanent_failure_fails_only_that_recipient(
    db, session, fake, gateway, caplog
) -> None:
    fake.fail_numbers = {PHONES[1]}
    _queue(session, [(phone, "Prices today") for phone in PHONES[:3]])
    with caplog.at_level(logging.DEBUG):
        stats = drain_once(db, gateway)
    assert (stats.sent, stats.failed, stats.requests) == (2, 1, 1)
    rows = _rows(session)
    failed = rows[PHONES[1]]
    assert (failed.status, failed.gateway_message_id) == ("failed", None)
    assert "InvalidPhoneNumber" in failed.last_error and failed.final_at is not None
    assert [rows[phone].status for phone in (PHONES[0], PHONES[2])] == ["sent", "sent"]
    assert mask_phone(PHONES[1]) in caplog.text
    assert PHONES[1] not in caplog.text and API_KEY not in caplog.text


def test_transient_failures_end_with_every_message_sent_exactly_once(
    db, session, fake, gateway
) -> None:
    fake.error_rate, fake.timeout_rate = 0.15, 0.15
    # Replies are sent at least once, so a lost answer is retried like a 500.
    texts = [f"Reply {n}: maize {3000 + n * 50} KES" for n in range(6)]
    messages = [(PHONES[n * 4 + k], text) for n, text in enumerate(texts) for k in range(4)]
    _queue(session, messages, purpose="reply")
    for _ in range(12):
        drain_once(db, gateway, chunk=2)
        if all(row.status == "sent" for row in _rows(session).values()):
            break
        _make_due(session)
    rows = _rows(session)
    assert {row.status for row in rows.values()} == {"sent"}
    assert fake.received() == {message: 1 for message in messages}
    answers = fake.answers()
    assert answers["500"] > 0 and answers["timeout"] > 0
    retried = [row for row in rows.values() if row.attempts > 1]
    assert retried, "the failures must have hit some messages"


def test_lost_answers_leave_bulletins_unknown_never_repeated(db, session, fake, gateway) -> None:
    fake.timeout_rate = 1.0
    _queue(session, [(PHONES[0], "Prices today"), (PHONES[1], "Prices today")])
    drain_once(db, gateway)
    rows = _rows(session)
    assert {row.status for row in rows.values()} == {"unknown"}
    fake.timeout_rate = 0.0
    _make_due(session)
    assert drain_once(db, gateway).claimed == 0


def test_wrong_api_key_pauses_sending_and_keeps_the_queue(db, session, fake) -> None:
    gateway = AfricasTalkingGateway("sandbox", "wrong-key", api_base=fake.base_url)
    _queue(session, [(PHONES[0], "Hello"), (PHONES[1], "Hello")])
    stats = drain_once(db, gateway)
    assert stats.paused.startswith("HTTP 401") and (stats.sent, stats.failed) == (0, 0)
    rows = _rows(session)
    assert {(row.status, row.attempts) for row in rows.values()} == {("queued", 0)}
    assert fake.received() == {}
    # Every drain now waits: nothing is claimed, nothing is asked of the gateway.
    assert drain_once(db, gateway).claimed == 0 and len(fake.requests) == 1
    assert paused_gateway(session)["reason"].startswith("HTTP 401")
    # The operator fixes the key and restarts: the first pass tries at once and sends all.
    fixed = AfricasTalkingGateway("sandbox", API_KEY, api_base=fake.base_url)
    assert drain_once(db, fixed, probe=True).sent == 2
    assert paused_gateway(session) is None
    assert fake.received() == {(PHONES[0], "Hello"): 1, (PHONES[1], "Hello"): 1}


def test_a_paused_gateway_is_tried_again_after_its_wait_with_backoff(db, session, fake) -> None:
    gateway = AfricasTalkingGateway("sandbox", "wrong-key", api_base=fake.base_url)
    _queue(session, [(PHONES[0], "Hello")])
    drain_once(db, gateway)
    first = paused_gateway(session)
    _pass_pause_wait(session)
    assert drain_once(db, gateway).paused and len(fake.requests) == 2
    second = paused_gateway(session)
    assert second["since"] == first["since"] and second["wait_seconds"] == 2 * first["wait_seconds"]
    fake.api_key = "wrong-key"  # the account is put right on AT's side (e.g. topped up)
    _pass_pause_wait(session)
    assert drain_once(db, gateway).sent == 1 and paused_gateway(session) is None


@pytest.mark.parametrize("code, status", [(405, "InsufficientBalance"), (402, "InvalidSenderId")])
def test_account_refusals_per_recipient_pause_sending(db, session, gateway, monkeypatch, code, status) -> None:
    answer = {"SMSMessageData": {"Message": "Sent to 0/2", "Recipients": [
        _entry(code, PHONES[0], status), _entry(code, PHONES[1], status),
    ]}}
    monkeypatch.setattr(gateway._sms, "send", lambda *args, **kwargs: answer)
    _queue(session, [(PHONES[0], "Hello"), (PHONES[1], "Hello"), (PHONES[2], "Other text")])
    stats = drain_once(db, gateway)
    assert stats.paused == f"{code} {status}" and stats.requests == 1
    assert {(row.status, row.attempts) for row in _rows(session).values()} == {("queued", 0)}


def test_a_sender_id_refused_for_the_whole_request_pauses_sending(db, session, gateway, monkeypatch) -> None:
    answer = {"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}
    monkeypatch.setattr(gateway._sms, "send", lambda *args, **kwargs: answer)
    _queue(session, [(PHONES[0], "Hello")])
    assert "InvalidSenderId" in drain_once(db, gateway).paused
    assert _rows(session)[PHONES[0]].status == "queued"


def _pass_pause_wait(session) -> None:
    """Move the recorded pause's retry time into the past (as if its wait had passed)."""
    row = runtime_state.get(session, runtime_state.GATEWAY_PAUSE)
    runtime_state.put(session, runtime_state.GATEWAY_PAUSE, {**row.value, "retry_at": "2000-01-01T00:00:00+00:00"})
    session.commit()


@pytest.mark.parametrize("mode", ["refused", "503"])
def test_service_down_is_retried_until_it_comes_back(db, session, fake, gateway, mode) -> None:
    _queue(session, [(PHONES[0], "Hello"), (PHONES[1], "Hello")])
    fake.down = mode
    stats = drain_once(db, gateway)
    assert (stats.retried, stats.sent) == (2, 0)
    rows = _rows(session)
    assert {row.status for row in rows.values()} == {"queued"}
    expected = "ConnectionError" if mode == "refused" else "HTTP 503"
    assert all(row.last_error.startswith(expected) for row in rows.values())
    fake.down = None
    _make_due(session)
    assert drain_once(db, gateway).sent == 2
    assert fake.received() == {(PHONES[0], "Hello"): 1, (PHONES[1], "Hello"): 1}


def test_an_answer_that_is_not_json_is_retried(db, session, fake, gateway) -> None:
    # The SDK parses the body only for exactly "application/json"; otherwise it hands
    # back the raw text.
    fake.content_type = "application/json; charset=utf-8"
    _queue(session, [(PHONES[0], "Hello")])
    assert drain_once(db, gateway).retried == 1
    assert _rows(session)[PHONES[0]].last_error.startswith("unexpected answer: ")


def test_large_requests_ask_at_to_enqueue(fake, gateway) -> None:
    recipients = [f"+2547100{n:05d}" for n in range(100)]
    results = gateway.send("Weekly bulletin", recipients, None)
    assert {result.outcome for result in results} == {"sent"}
    assert [request.enqueue for request in fake.requests] == [True]


def test_numbers_the_sdk_would_reject_fail_alone(fake, gateway) -> None:
    sent = gateway.send("Hi", ["0712345678", PHONES[0]], None)
    results = {result.phone: result for result in sent}
    assert (results["0712345678"].outcome, results[PHONES[0]].outcome) == ("failed", "sent")
    assert fake.requests[0].recipients == (PHONES[0],)


def test_per_recipient_codes_are_classified(gateway, monkeypatch) -> None:
    answer = {
        "SMSMessageData": {
            "Message": "Sent to 1/6 Total Cost: KES 0.8000",
            "Recipients": [
                _entry(102, PHONES[0], "Queued", "KES 0.8000", "ATXid_q"),
                _entry(405, PHONES[1], "InsufficientBalance"),
                _entry(502, PHONES[2], "RejectedByGateway"),
                _entry(999, PHONES[3], "Mystery"),
                _entry("bad", PHONES[4], ""),
            ],
        }
    }
    monkeypatch.setattr(gateway._sms, "send", lambda *args, **kwargs: answer)
    results = {result.phone: result for result in gateway.send("Hi", PHONES[:6], None)}
    assert results[PHONES[0]].outcome == "sent" and results[PHONES[0]].message_id == "ATXid_q"
    # Out of credit is the account's state, not this number's: sending pauses.
    assert (results[PHONES[1]].outcome, results[PHONES[1]].error) == (
        "pause",
        "405 InsufficientBalance",
    )
    assert results[PHONES[1]].message_id is None
    assert [results[phone].outcome for phone in PHONES[2:6]] == ["retry"] * 4
    assert results[PHONES[5]].error.startswith("not in the answer")


def _entry(code: object, number: str, status: str, cost: str = "0", message_id: str = "None"):
    return {
        "statusCode": code,
        "number": number,
        "status": status,
        "cost": cost,
        "messageId": message_id,
    }


def test_at_sender_id_is_used_for_messages_without_their_own(fake) -> None:
    from smsgw.config import load_settings
    from smsgw.messaging.gateways import build_gateway

    settings = load_settings({
        "SMSGW_GATEWAY": "africastalking", "AT_API_KEY": API_KEY, "AT_API_BASE": fake.base_url, "AT_SENDER_ID": "SOKO",
    })
    gateway = build_gateway(settings)
    gateway.send("A reply", [PHONES[0]], None)
    gateway.send("A bulletin", [PHONES[1]], "SOKOSN")
    assert [request.sender_id for request in fake.requests] == ["SOKO", "SOKOSN"]
