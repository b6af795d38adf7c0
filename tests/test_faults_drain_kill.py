"""A real drain process (``smsgw outbox drain`` on the Africa's Talking SDK) killed with
SIGKILL in the middle of a batch, then restarted.

The fake AT is slow, so a request is in flight when the kill comes. The rule (see
smsgw/messaging/outbox.py): after ``recover_stale``, bulletins that were in the request in
flight become ``unknown`` (at most once), replies are queued again (at least once), and
everything the dead drain had claimed but not yet handed to the gateway is queued again.
So nothing is lost, and the only messages that can go twice are the replies of the one
request in flight: the test counts them exactly.
"""
from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from smsgw.db import Database
from smsgw.messaging.outbox import LEASE, enqueue, recover_stale
from smsgw.models import OutboundMessage
from tests.fake_at import FakeAfricasTalking
from tests.support.databases import BACKENDS, fresh_database
from tests.support.processes import gateway_env

API_KEY = "kill-key"
DELAY = 0.1  # seconds per gateway request
REPLY_TEXTS, BULLETIN_TEXTS, PER_TEXT = 8, 12, 10  # 20 requests of 10 recipients


@pytest.fixture(params=BACKENDS)
def outbox_db(request, tmp_path) -> Iterator[Database]:
    """A database of its own with 80 replies and 120 bulletins due, 10 per distinct text."""
    with fresh_database(tmp_path, request.param, seed=False) as url:
        db = Database(url)
        with db.session() as session:
            n = 0
            for purpose, texts in (("reply", REPLY_TEXTS), ("bulletin", BULLETIN_TEXTS)):
                for t in range(texts):
                    for _ in range(PER_TEXT):
                        text = f"{purpose} {t}: maize 4,{t:03d} KES"
                        enqueue(session, to=f"+2547300{n:05d}", text=text, purpose=purpose, key=f"kill:{n}")
                        n += 1
        yield db
        db.dispose()


def _drain(url: str, fake: FakeAfricasTalking) -> subprocess.Popen:
    env = gateway_env(url, fake)
    return subprocess.Popen(
        [sys.executable, "-m", "smsgw", "outbox", "drain"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def _rows(db: Database) -> list[OutboundMessage]:
    with db.session() as session:
        return list(session.scalars(sa.select(OutboundMessage).order_by(OutboundMessage.id)))


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [3, 12], ids=["during-replies", "during-bulletins"])
def test_killed_drain_loses_nothing_and_repeats_at_most_one_request(outbox_db: Database, kill_at: int) -> None:
    with FakeAfricasTalking(api_key=API_KEY, delay_seconds=DELAY) as fake:
        first = _drain(outbox_db.url, fake)
        try:
            _wait_for(lambda: len(fake.requests) >= kill_at)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
            first.stderr.close()
        in_flight_request = fake.requests[kill_at - 1]
        # The fake finishes the request the dead drain was waiting on: AT took it.
        _wait_for(lambda: sum(fake.received().values()) >= PER_TEXT * kill_at)
        time.sleep(DELAY)
        assert len(fake.requests) == kill_at

        at_kill = _rows(outbox_db)
        sending = [row for row in at_kill if row.status == "sending"]
        assert sending, "the kill must come in the middle of a batch"
        with outbox_db.session() as session:
            # The killed drain renews its lease no more: once it runs out, its rows are settled.
            settled = recover_stale(session, now=dt.datetime.now(dt.UTC) + LEASE + dt.timedelta(seconds=1))
        in_flight = set(in_flight_request.recipients)
        purpose = "reply" if kill_at <= REPLY_TEXTS else "bulletin"
        assert settled == {
            "unknown": len(in_flight) if purpose == "bulletin" else 0,
            "requeued": len(sending) - (len(in_flight) if purpose == "bulletin" else 0),
        }

        # Restarted drains until nothing is queued: on a loaded machine a request can time
        # out on connecting and wait in backoff, which the scheduler's next passes would
        # retry; the test plays those passes at once (the restart is what is under test).
        logs = []
        for _ in range(5):
            with outbox_db.session() as session:
                waiting = session.execute(
                    sa.update(OutboundMessage)
                    .where(OutboundMessage.status == "queued")
                    .values(next_attempt_at=dt.datetime.now(dt.UTC))
                ).rowcount
            if not waiting:
                break
            again = _drain(outbox_db.url, fake)
            _, errors = again.communicate(timeout=120)
            logs.append(errors.decode())
            assert again.returncode == 0, logs[-1]

    rows = _rows(outbox_db)
    received = fake.received()
    # Nothing lost: every message reached AT at least once, and is settled.
    assert all(received[(row.to_phone, row.text)] >= 1 for row in rows), logs
    assert Counter(row.status for row in rows) == Counter(
        {"sent": len(rows) - (len(in_flight) if purpose == "bulletin" else 0)}
        | ({"unknown": len(in_flight)} if purpose == "bulletin" else {})
    )
    assert {row.to_phone for row in rows if row.status == "unknown"} == (in_flight if purpose == "bulletin" else set())
    # Repeats: exactly the replies of the one request in flight, none of the bulletins.
    repeated = {phone for (phone, _), count in received.items() if count > 1}
    assert max(received.values()) <= 2
    assert repeated == (in_flight if purpose == "reply" else set())
    assert len(repeated) <= PER_TEXT  # one gateway request's worth
    assert len(received) == len(rows)
