"""A real scheduler process killed in the middle of a bulletin run, then restarted.

Every subscriber gets exactly one bulletin: the run is claimed by its bulletin_run row,
each message carries its (contact, kind, date) key, and the restarted scheduler picks
the unfinished run up at once. Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL
is set, each in a database of its own (the processes commit for real).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from smsgw.db import Database, utcnow
from smsgw.models import BulletinRun, Commodity, Contact, Market, OutboundMessage, Subscription
from smsgw.services.bulletins import BATCH
from tests.support.databases import BACKENDS, fresh_database

EXTRA_SUBSCRIBERS = 2500


@pytest.fixture(params=BACKENDS)
def kill_db(request, tmp_path) -> Iterator[Database]:
    """A migrated, seeded database with many Nakuru subscribers due for their bulletin now."""
    with fresh_database(tmp_path, request.param) as url:
        db = Database(url)
        yield _due_subscribers(db)
        db.dispose()


def _due_subscribers(db: Database) -> Database:
    with db.session() as session:
        # Only Nakuru is due: a demo market whose local bulletin hour happens to be now
        # would add its own subscribers' bulletins to the count.
        for market in session.scalars(sa.select(Market)):
            local_hour = utcnow().astimezone(ZoneInfo(market.timezone)).hour
            market.bulletin_hour = local_hour if market.code == "nakuru" else (local_hour + 12) % 24
        nakuru = session.scalar(sa.select(Market).where(Market.code == "nakuru"))
        maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
        contacts = session.scalars(
            sa.insert(Contact).returning(Contact.id),
            [
                {
                    "phone": f"+2547200{i:05d}",
                    "language": "sw",
                    "consent": "granted",
                    "home_market_id": nakuru.id,
                    "language_chosen": True,
                    "created_at": utcnow(),
                }
                for i in range(EXTRA_SUBSCRIBERS)
            ],
        ).all()
        session.execute(
            sa.insert(Subscription),
            [
                {
                    "contact_id": cid,
                    "commodity_id": maize.id,
                    "market_id": nakuru.id,
                    "created_at": utcnow(),
                }
                for cid in contacts
            ],
        )
    return db


def _start(url: str, pause: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BULLETIN_BATCH_PAUSE": pause,
        "SMSGW_GATEWAY": "console",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "smsgw", "scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _state(db: Database) -> tuple[list[int], bool]:
    """Contacts with today's daily bulletin queued (in id order), and whether the run finished."""
    with db.session() as session:
        queued = session.scalars(
            sa.select(OutboundMessage.contact_id)
            .where(
                OutboundMessage.purpose == "bulletin",
                OutboundMessage.idempotency_key.like("bulletin:daily:%"),
            )
            .order_by(OutboundMessage.contact_id)
        ).all()
        finished = session.scalar(
            sa.select(BulletinRun.finished_at)
            .join(Market)
            .where(Market.code == "nakuru", BulletinRun.kind == "daily")
        )
    return list(queued), finished is not None


def _subscribers(db: Database) -> list[int]:
    """The Nakuru bulletin's recipients in id order (the order the run takes them in)."""
    with db.session() as session:
        return list(session.scalars(
            sa.select(Contact.id)
            .where(
                Contact.home_market.has(Market.code == "nakuru"),
                Contact.consent != "withdrawn",
                sa.exists().where(Subscription.contact_id == Contact.id),
            )
            .order_by(Contact.id)
        ))


def _wait(predicate, what: str, timeout: float = 120.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.slow
def test_killed_scheduler_restarts_and_sends_each_subscriber_one_bulletin(
    kill_db: Database,
) -> None:
    subscribers = _subscribers(kill_db)
    assert len(subscribers) >= EXTRA_SUBSCRIBERS > 2 * BATCH
    # The first scheduler commits its first batch and then pauses (the longest pause the
    # setting allows): it is killed in that pause, so where the kill lands does not depend
    # on how fast this machine is. The batch is one INSERT, so it is seen whole or not at all.
    first = _start(kill_db.url, pause="60")
    try:
        _wait(lambda: _state(kill_db)[0], "the first batch")
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    queued_at_kill, finished = _state(kill_db)
    assert not finished
    assert queued_at_kill == subscribers[:BATCH], "exactly the first batch, in the run's order"
    second = _start(kill_db.url, pause="0")
    try:
        _wait(lambda: _state(kill_db)[1], "the restarted scheduler to finish the run")
    finally:
        second.terminate()
        second.wait(timeout=20)
    queued, finished = _state(kill_db)
    assert finished
    assert queued == subscribers  # everyone once: none lost, none twice
