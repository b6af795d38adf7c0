"""Several drains on one PostgreSQL outbox, with a slow gateway: each message goes once.

The scheduler's drain (which also recovers rows left by stopped drains) and two
``smsgw outbox drain`` processes send 10,000 messages through a fake Africa's Talking
API that takes a while to answer. A batch takes far longer than the lease, so the test
holds only because a live drain renews its lease and recovery takes only expired ones.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from smsgw.db import Database
from smsgw.messaging.outbox import Queued, enqueue_many
from smsgw.models import OutboundMessage
from tests.fake_at import FakeAfricasTalking
from tests.support.databases import fresh_database
from tests.support.processes import gateway_env

API_KEY = "test-key"
MESSAGES = 10_000
RECIPIENTS_PER_TEXT = 10  # many requests per 500-row batch: a batch outlasts the lease
LEASE_SECONDS = 3


def _left(db: Database) -> int:
    with db.session() as session:
        return session.scalar(
            sa.select(sa.func.count()).where(OutboundMessage.status.in_(("queued", "sending")))
        )


@pytest.mark.postgres
@pytest.mark.slow
def test_three_drains_and_a_slow_gateway_send_each_message_exactly_once(tmp_path) -> None:
    with fresh_database(tmp_path, "postgresql", seed=False) as url:
        db = Database(url)
        expected = Counter()
        with db.session() as session:
            batch = []
            for n in range(MESSAGES):
                phone, text = f"+2547350{n:05d}", f"Maize {3000 + n // RECIPIENTS_PER_TEXT} KES"
                batch.append(Queued(to=phone, text=text, key=f"share:{n}"))
                expected[(phone, text)] += 1
            enqueue_many(session, batch, purpose="reply")
        processes: list[subprocess.Popen] = []
        with FakeAfricasTalking(api_key=API_KEY, delay_seconds=0.1) as fake:
            env = gateway_env(url, fake, OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS))
            logs = [(tmp_path / f"drain-{i}.log").open("wb") for i in range(3)]
            try:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "smsgw", "scheduler"], env=env, stdout=logs[0], stderr=subprocess.STDOUT
                    )
                )
                # One drain that ends when the queue is empty, one that runs until stopped.
                for i, extra in ((1, []), (2, ["--follow"])):
                    command = [sys.executable, "-m", "smsgw", "outbox", "drain", *extra]
                    processes.append(subprocess.Popen(command, env=env, stdout=logs[i], stderr=subprocess.STDOUT))
                deadline = time.monotonic() + 600
                while _left(db):
                    assert time.monotonic() < deadline, "the drains did not finish in 10 minutes"
                    time.sleep(1)
                assert processes[1].wait(timeout=60) == 0
                processes[2].send_signal(signal.SIGTERM)
                assert processes[2].wait(timeout=60) == 0
            finally:
                for process in processes:
                    if process.poll() is None:
                        process.terminate()
                        process.wait(timeout=30)
                for log in logs:
                    log.close()
            received = fake.received()
            requests_by_drain = Counter(request.answer for request in fake.requests)
        with db.session() as session:
            rows = session.execute(sa.select(OutboundMessage.status, OutboundMessage.claimed_by)).all()
        db.dispose()
    assert received == expected  # each recipient exactly once: no loss, no duplicate
    assert requests_by_drain == Counter({"201": MESSAGES // RECIPIENTS_PER_TEXT})
    assert Counter(status for status, _ in rows) == Counter({"sent": MESSAGES})
    # All three took part (each row names the drain that sent it).
    assert len({owner for _, owner in rows}) == 3


def test_a_following_drain_sends_what_is_queued_and_stops_cleanly(tmp_path) -> None:
    with fresh_database(tmp_path, "sqlite", seed=False) as url, FakeAfricasTalking(api_key=API_KEY) as fake:
        db = Database(url)
        log = tmp_path / "follow.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "smsgw", "outbox", "drain", "--follow"],
                env=gateway_env(url, fake, OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS)),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            for n in range(3):
                with db.session() as session:
                    enqueue_many(
                        session, [Queued(to=f"+25470000090{n}", text=f"Reply {n}", key=f"follow:{n}")], purpose="reply"
                    )
                deadline = time.monotonic() + 30
                while fake.received()[(f"+25470000090{n}", f"Reply {n}")] != 1:
                    assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            db.dispose()
    assert "drain stopped" in log.read_text()
