"""A real scheduler process through database faults: it never exits, and resumes by itself.

SQLite: another process holds the write lock for 12 s. PostgreSQL: the scheduler reaches
the server through a loopback TCP proxy, which is stopped for 15 s (every connection cut,
new ones refused) and started again. In both, a reply queued during the fault reaches the
(fake) Africa's Talking API within 30 s after the fault ends, the process never exited,
and what it logged about the fault is one line per failure, not a traceback.
"""
from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from smsgw.db import Database
from smsgw.messaging.outbox import enqueue
from smsgw.models import RuntimeState
from tests.fake_at import FakeAfricasTalking
from tests.support.databases import fresh_database
from tests.support.processes import gateway_env
from tests.support.tcp_proxy import TcpProxy

API_KEY = "test-key"
PHONE = "+254700000777"
AFTER_FAULT = 30.0


def _start_scheduler(url: str, fake: FakeAfricasTalking, log: Path) -> subprocess.Popen:
    env = gateway_env(url, fake)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "smsgw", "scheduler"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_until(predicate, timeout: float, process: subprocess.Popen) -> float:
    """Seconds until ``predicate()`` held; fails if the process exits or time runs out."""
    started = time.monotonic()
    while not predicate():
        assert process.poll() is None, "the scheduler exited"
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - started


def _delivered(fake: FakeAfricasTalking, text: str) -> bool:
    return fake.received()[(PHONE, text)] >= 1


def _beating(db: Database) -> bool:
    with db.session() as session:
        return session.get(RuntimeState, "scheduler") is not None


def _queue_reply(db: Database, text: str) -> None:
    with db.session() as session:
        enqueue(session, to=PHONE, text=text, purpose="reply", key=f"reply:test:{text}")


@pytest.fixture()
def fake() -> Iterator[FakeAfricasTalking]:
    with FakeAfricasTalking(api_key=API_KEY) as fake:
        yield fake


def _stop(process: subprocess.Popen, log: Path) -> str:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return log.read_text(errors="replace")


@pytest.mark.slow
def test_scheduler_survives_a_held_sqlite_write_lock(tmp_path, fake) -> None:
    with fresh_database(tmp_path, "sqlite", seed=False) as url:
        db = Database(url)
        log = tmp_path / "scheduler.log"
        process = _start_scheduler(url, fake, log)
        try:
            _wait_until(lambda: _beating(db), 60, process)
            _queue_reply(db, "before the fault")
            _wait_until(lambda: _delivered(fake, "before the fault"), 30, process)

            locked, release = threading.Event(), threading.Event()

            def hold_lock() -> None:
                conn = sqlite3.connect(sa.make_url(url).database, isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                locked.set()
                release.wait(12)
                conn.execute("COMMIT")
                conn.close()

            holder = threading.Thread(target=hold_lock)
            holder.start()
            locked.wait(10)
            # Queued during the fault: this write waits for the lock like any webhook's.
            writer = threading.Thread(target=_queue_reply, args=(db, "during the fault"))
            writer.start()
            holder.join()
            writer.join()
            assert process.poll() is None
            _wait_until(lambda: _delivered(fake, "during the fault"), AFTER_FAULT, process)
        finally:
            output = _stop(process, log)
            db.dispose()
    assert "Traceback" not in output, output


@pytest.mark.slow
@pytest.mark.postgres
def test_scheduler_survives_postgres_connections_cut_for_15_seconds(tmp_path, fake) -> None:
    with fresh_database(tmp_path, "postgresql", seed=False) as url:
        direct = Database(url)
        target = sa.make_url(url)
        log = tmp_path / "scheduler.log"
        with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            through = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            process = _start_scheduler(through, fake, log)
            try:
                _wait_until(lambda: _beating(direct), 60, process)
                _queue_reply(direct, "before the fault")
                _wait_until(lambda: _delivered(fake, "before the fault"), 30, process)

                proxy.stop()
                time.sleep(2)
                _queue_reply(direct, "during the fault")
                time.sleep(13)
                assert process.poll() is None
                assert not _delivered(fake, "during the fault")
                proxy.start()
                _wait_until(lambda: _delivered(fake, "during the fault"), AFTER_FAULT, process)
            finally:
                output = _stop(process, log)
                direct.dispose()
    assert "Traceback" not in output, output
    # The fault was seen and reported in one line each time (every line is a log line).
    assert "job store 'default': OperationalError: connection failed" in output, output
    assert all(re.match(r"\d{4}-\d\d-\d\d ", line) for line in output.splitlines()), output
