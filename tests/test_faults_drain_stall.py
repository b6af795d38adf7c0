"""A real drain process stalled past its lease (SIGSTOP in the middle of a request), its
rows recovered and sent by a second drain, then let go on (SIGCONT).

The stalled drain must not send what it no longer holds: before each request it takes
back only the rows still claimed by it (``drain.hand_over``), and it writes answers only
to rows nobody else has claimed since. So each recipient gets each text once, and the
bulletins of the request that was in flight, which recovery could only call ``unknown``,
end ``sent`` because the stalled drain, which did send them, says so when it wakes.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from smsgw.db import Database
from smsgw.messaging.outbox import Queued, enqueue_many, recover_stale
from smsgw.models import OutboundMessage
from tests.fake_at import FakeAfricasTalking
from tests.support.databases import BACKENDS, fresh_database
from tests.support.processes import gateway_env

API_KEY = "stall-key"
LEASE_SECONDS = 2
DELAY = 1.5  # seconds per gateway request: long enough to stop the drain inside one
TEXTS, PER_TEXT = 5, 4  # one batch of 5 requests


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_drain_stalled_past_its_lease_sends_nothing_another_drain_took(tmp_path, backend) -> None:
    with fresh_database(tmp_path, backend, seed=False) as url, FakeAfricasTalking(
        api_key=API_KEY, delay_seconds=DELAY
    ) as fake:
        db = Database(url)
        expected: Counter[tuple[str, str]] = Counter()
        queued = []
        for t in range(TEXTS):
            for r in range(PER_TEXT):
                phone, text = f"+2547310{t:02d}{r:03d}", f"Bulletin {t}: maize 4,{t:03d} KES"
                queued.append(Queued(to=phone, text=text, key=f"stall:{t}:{r}"))
                expected[(phone, text)] += 1
        with db.session() as session:
            enqueue_many(session, queued, purpose="bulletin")
        env = gateway_env(url, fake, OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS))
        command = [sys.executable, "-m", "smsgw", "outbox", "drain"]
        stalled = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # Stopped while its first request is in the fake's hands: it holds no lock.
            _wait_for(lambda: len(fake.requests) >= 1, "the first request")
            stalled.send_signal(signal.SIGSTOP)
            time.sleep(LEASE_SECONDS + 1)
            # As the scheduler's drain does: recover the rows whose lease ran out (the
            # request in flight becomes unknown, the rest is queued again), then send.
            with db.session() as session:
                assert recover_stale(session) == {"unknown": PER_TEXT, "requeued": (TEXTS - 1) * PER_TEXT}
            second = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=120)
            assert second.returncode == 0, second.stderr
            assert len(fake.requests) == TEXTS  # the first request, and the four the second drain made
            stalled.send_signal(signal.SIGCONT)
            out, err = stalled.communicate(timeout=120)
            assert stalled.returncode == 0, err
        finally:
            if stalled.poll() is None:
                stalled.send_signal(signal.SIGCONT)
                stalled.kill()
                stalled.wait()
        assert fake.received() == expected  # each recipient once: nothing lost, nothing twice
        assert len(fake.requests) == TEXTS
        assert b"taken over by another drain" in err
        # It says so: what it sent (the request in flight), and what it left to the other.
        assert out.strip().endswith(f"sent {PER_TEXT}, failed 0, to retry 0, taken over by another drain "
                                    f"{(TEXTS - 1) * PER_TEXT}".encode()), out
        with db.session() as session:
            statuses = Counter(session.scalars(sa.select(OutboundMessage.status)).all())
        db.dispose()
    assert statuses == Counter({"sent": TEXTS * PER_TEXT})
