"""The outbox: idempotent enqueue, claims in priority order, retries, and crash recovery."""
from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.messaging.drain import _whole_requests
from smsgw.messaging.outbox import (
    MAX_ATTEMPTS,
    Queued,
    SendResult,
    backoff,
    claim_due,
    enqueue,
    enqueue_many,
    record_result,
    recover_stale,
)
from smsgw.models import OutboundMessage

PHONE = "+254700000101"


def _queue(session, key: str, purpose: str = "reply", **kwargs) -> OutboundMessage:
    kwargs.setdefault("to", PHONE)
    kwargs.setdefault("text", f"text for {key}")
    return enqueue(session, purpose=purpose, key=key, **kwargs)


def test_enqueue_is_idempotent_on_key(session) -> None:
    first = _queue(session, "reply:1", text="Maize 3200")
    again = _queue(session, "reply:1", text="something else", to="+254700000102")
    session.commit()
    assert again.id == first.id
    rows = session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.idempotency_key == "reply:1")
    ).all()
    assert [(row.text, row.to_phone) for row in rows] == [("Maize 3200", PHONE)]


def test_enqueue_stores_the_normalised_text_and_its_cost(session) -> None:
    message = _queue(session, "reply:2", text="Maize \u201cgrade 1\u201d", lang="en")
    assert (message.text, message.encoding, message.segments) == ('Maize "grade 1"', "gsm7", 1)
    assert (message.status, message.attempts, message.priority) == ("queued", 0, 0)


def test_claim_orders_replies_before_orders_before_bulletins(session) -> None:
    _queue(session, "bulletin:daily:1", purpose="bulletin")
    _queue(session, "order:1:open:1", purpose="order")
    _queue(session, "reply:3", purpose="reply")
    session.commit()
    assert [m.purpose for m in claim_due(session, 1)] == ["reply"]
    assert [m.purpose for m in claim_due(session, 10)] == ["order", "bulletin"]


def test_claim_never_hands_a_row_out_twice(session) -> None:
    keys = [f"bulletin:daily:d:{n}" for n in range(5)]
    for key in keys:
        _queue(session, key, purpose="bulletin")
    session.commit()
    first = claim_due(session, 3)
    second = claim_due(session, 10)
    assert (len(first), len(second)) == (3, 2)
    assert claim_due(session, 10) == []
    claimed = [m.idempotency_key for m in first + second]
    assert sorted(claimed) == sorted(keys)
    assert all((m.status, m.attempts) == ("sending", 1) for m in first + second)
    assert all(m.claimed_at is not None for m in first + second)


def test_claim_skips_messages_not_yet_due(session) -> None:
    later = _queue(session, "reply:4", not_before=utcnow() + dt.timedelta(minutes=5))
    session.commit()
    assert claim_due(session, 10) == []
    due = claim_due(session, 10, now=utcnow() + dt.timedelta(minutes=6))
    assert [m.id for m in due] == [later.id]


def test_sent_result_keeps_id_and_cost(session) -> None:
    _queue(session, "reply:5")
    session.commit()
    (message,) = claim_due(session, 10)
    record_result(message, SendResult(PHONE, "sent", message_id="ATXid_1", cost="KES 0.8000"))
    assert (message.status, message.gateway_message_id) == ("sent", "ATXid_1")
    assert (message.cost, message.cost_currency) == (decimal.Decimal("0.8000"), "KES")
    assert message.sent_at is not None and message.last_error == ""


def test_retry_backs_off_then_fails_after_max_attempts(session) -> None:
    _queue(session, "reply:6")
    session.commit()
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS):
        (message,) = claim_due(session, 10, now=now)
        assert message.attempts == attempt
        record_result(message, SendResult(PHONE, "retry", error="HTTP 500"), now=now)
        session.flush()
        assert (message.status, message.last_error) == ("queued", "HTTP 500")
        ceiling = min(3600.0, 30.0 * 2 ** (attempt - 1))
        wait = (message.next_attempt_at - now).total_seconds()
        assert ceiling / 2 <= wait <= ceiling
        assert claim_due(session, 10, now=now) == []
        now = message.next_attempt_at
    (message,) = claim_due(session, 10, now=now)
    record_result(message, SendResult(PHONE, "retry", error="ReadTimeout"), now=now)
    assert (message.status, message.attempts, message.last_error) == (
        "failed",
        MAX_ATTEMPTS,
        "ReadTimeout",
    )
    assert message.final_at == now


def test_permanent_failure_is_final_with_its_reason(session) -> None:
    _queue(session, "reply:7")
    session.commit()
    (message,) = claim_due(session, 10)
    record_result(message, SendResult(PHONE, "failed", error="403 InvalidPhoneNumber"))
    assert (message.status, message.last_error) == ("failed", "403 InvalidPhoneNumber")
    assert message.final_at is not None


def test_backoff_grows_and_is_capped() -> None:
    for attempts, ceiling in [(1, 30), (2, 60), (3, 120), (30, 3600)]:
        seconds = backoff(attempts).total_seconds()
        assert ceiling / 2 <= seconds <= ceiling


def test_recover_stale_drops_bulletins_and_requeues_replies(session) -> None:
    past = utcnow() - dt.timedelta(hours=1)
    bulletin = _queue(session, "bulletin:daily:s:1", purpose="bulletin", not_before=past)
    reply = _queue(session, "reply:8", not_before=past)
    session.commit()
    claim_due(session, 10, now=past)
    fresh = _queue(session, "reply:9")
    session.commit()
    claim_due(session, 10)
    counts = recover_stale(session)
    session.commit()
    assert counts == {"unknown": 1, "requeued": 1}
    for message in (bulletin, reply, fresh):
        session.refresh(message)
    assert (bulletin.status, bulletin.last_error) == ("unknown", "drain stopped during send")
    assert bulletin.final_at is not None
    assert reply.status == "queued" and reply.next_attempt_at <= utcnow()
    assert fresh.status == "sending"


def test_lost_answer_settles_bulletins_as_unknown_and_retries_replies(session) -> None:
    from smsgw.messaging.outbox import SendResult, enqueue, record_result

    bulletin = enqueue(session, to="+254700000001", text="Prices", purpose="bulletin", key="t:maybe:b")
    reply = enqueue(session, to="+254700000001", text="Hi", purpose="reply", key="t:maybe:r")
    for message in (bulletin, reply):
        message.attempts = 1
        record_result(message, SendResult(message.to_phone, "maybe", error="ReadTimeout"))
    assert bulletin.status == "unknown" and reply.status == "queued"


def _rows(session, prefix: str) -> list[OutboundMessage]:
    return session.scalars(
        sa.select(OutboundMessage)
        .where(OutboundMessage.idempotency_key.like(f"{prefix}%"))
        .order_by(OutboundMessage.idempotency_key)
    ).all()


def test_enqueue_many_inserts_encoded_rows_and_skips_known_keys(session) -> None:
    _queue(session, "bulletin:daily:m:1", purpose="bulletin", text="kept as it was")
    later = utcnow() + dt.timedelta(hours=2)
    enqueue_many(
        session,
        [
            Queued("+254700000201", "Mahindi \u201c3200\u201d", "bulletin:daily:m:1", "sw", None),
            Queued("+254700000202", "Mahindi \u201c3200\u201d", "bulletin:daily:m:2", "sw", None),
            Queued("+221770000203", "Mil \u00e0 Thi\u00e8s \u20ac", "bulletin:daily:m:3", "fr", None),
        ],
        purpose="bulletin",
        sender_id="SOKO",
        not_before=later,
    )
    enqueue_many(session, [], purpose="bulletin")
    rows = _rows(session, "bulletin:daily:m:")
    assert [(row.to_phone, row.text) for row in rows[:2]] == [
        (PHONE, "kept as it was"),
        ("+254700000202", 'Mahindi "3200"'),
    ]
    second, third = rows[1], rows[2]
    assert (second.encoding, second.segments, second.priority, second.sender_id) == ("gsm7", 1, 5, "SOKO")
    assert (second.status, second.attempts, second.last_error) == ("queued", 0, "")
    assert second.next_attempt_at == later
    # The euro sign is GSM-7 (an escape), the grave and acute accents are in its table.
    assert third.encoding == "gsm7" and third.text.startswith("Mil")
    # Only the message queued before is due: the others wait two hours.
    assert [m.idempotency_key for m in claim_due(session, 10)] == ["bulletin:daily:m:1"]


def _bulletins(session, texts: dict[str, int]) -> None:
    messages = [
        Queued(f"+2547003{n:05d}", text, f"bulletin:daily:w:{text}:{n}")
        for text, count in texts.items()
        for n in range(count)
    ]
    enqueue_many(session, messages, purpose="bulletin")
    session.commit()


def test_a_full_batch_gives_back_the_cut_off_part_of_its_last_text(session) -> None:
    # Claim order puts the texts side by side: 7 of "a", then "b" cut off after 3 of its 6.
    _bulletins(session, {"a": 7, "b": 6})
    batch = claim_due(session, 10)
    kept = _whole_requests(session, batch, batch_size=10, chunk=2)
    session.commit()
    assert [m.text for m in kept] == ["a"] * 7 + ["b"] * 2
    statuses = {m.idempotency_key: (m.status, m.attempts) for m in _rows(session, "bulletin:daily:w:b")}
    assert sorted(statuses.values()) == [("queued", 0)] * 4 + [("sending", 1)] * 2
    # The next claim takes the given-back recipient first, with the rest of its text.
    assert [m.text for m in claim_due(session, 10)] == ["b"] * 4


def test_whole_requests_leaves_batches_that_need_no_trimming(session) -> None:
    _bulletins(session, {"c": 4, "d": 4})
    batch = claim_due(session, 8)
    assert _whole_requests(session, batch, batch_size=8, chunk=2) == batch  # "d" fills 2 requests
    assert _whole_requests(session, batch[:5], batch_size=8, chunk=2) == batch[:5]  # not a full batch
    _bulletins(session, {"e": 9})
    single = claim_due(session, 3)
    # A batch that is all one text, shorter than a request, goes as it is: giving it
    # all back would leave nothing to send.
    assert _whole_requests(session, single, batch_size=3, chunk=4) == single
    assert {m.status for m in single} == {"sending"}
