"""Reading never blocks a farmer: USSD hops answer in time while the analytics report is computed.

On SQLite a transaction that only reads begins DEFERRED and, in WAL mode, reads a snapshot
without the write lock; only a transaction that writes begins IMMEDIATE. So a report
computed in another process, in one long read transaction, or the analytics page opened
again and again in the app itself (the demo: an operator looks while a farmer plays),
leaves every hop answering within AT's patience. The control shows the test would see the
old behaviour: a transaction begun IMMEDIATE and held in another process makes a hop wait.
"""
from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask

from smsgw import create_app
from smsgw.analytics import cache
from smsgw.cli import main
from smsgw.conversations.ussd.session import apology
from smsgw.db import Database
from smsgw.models import ReportCache, SaleReport
from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import AppServer
from tests.test_admin_fixtures import make_user, sign_in

pytestmark = pytest.mark.slow
FARMER = "+254700000001"
IN_TIME = 2.0  # seconds: AT gives up on a USSD hop after a few
HOPS = 20
# Spawned, not forked: the parent runs a server thread, and the child shares no GIL with it.
SPAWN = multiprocessing.get_context("spawn")


def _path(hops: int) -> list[str]:
    """The ``text`` of each hop of one session: prices of crop c in market m, home, again."""
    steps = itertools.cycle(itertools.chain.from_iterable(("1", c, c, "00") for c in "1234"))
    texts, inputs = [""], []
    while len(texts) < hops:
        inputs.append(next(steps))
        texts.append("*".join(inputs))
    return texts


def _hop(server: AppServer, session_id: str, text: str) -> tuple[str, float]:
    fields = {"sessionId": session_id, "phoneNumber": FARMER, "serviceCode": "*384*1#", "networkCode": "63902",
              "text": text}
    started = time.monotonic()
    response = requests.post(f"{server.url}/at/ussd", data=fields, timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return response.text, time.monotonic() - started


def _play(server: AppServer, session_id: str) -> list[float]:
    """Play a whole USSD session; every hop must answer a screen (not the apology) in time."""
    took = []
    for text in _path(HOPS):
        body, elapsed = _hop(server, session_id, text)
        assert body.startswith(("CON ", "END ")) and body != apology("en"), (text, body)
        assert elapsed < IN_TIME, f"hop {text!r} took {elapsed:.2f}s"
        took.append(elapsed)
    return took


def report_in_a_long_read(url: str, ready: Any, stop: Any, computed: Any) -> None:
    """(child) Compute the report again and again in one read-only transaction until told to stop."""
    database = Database(url)
    try:
        with database.session(read_only=True) as session:
            conn = session.connection()
            while True:
                cache.compute(conn, "month", "", dt.date.today())
                with computed.get_lock():
                    computed.value += 1
                ready.set()
                if stop.is_set():
                    break
    finally:
        database.dispose()


def write_lock_held(url: str, ready: Any, seconds: float) -> None:
    """(child) The old behaviour: a transaction begun IMMEDIATE, as every one was, held a while."""
    database = Database(url)
    try:
        with database.session() as session:
            session.execute(sa.select(sa.func.count()).select_from(SaleReport))
            ready.set()
            time.sleep(seconds)
    finally:
        database.dispose()


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, Flask, AppServer]]:
    """A running app on a fresh seeded database of its own, warmed up by one USSD session."""
    with fresh_database(tmp_path, request.param) as url:
        app = create_app({"DATABASE_URL": url, "WEBHOOK_TOKEN": ""})
        try:
            with AppServer(app) as server:
                body, _ = _hop(server, "warm-up", "")
                assert body.startswith("CON ")
                yield url, app, server
        finally:
            app.extensions["smsgw.db"].dispose()


def _stop(child: Any) -> None:
    child.join(timeout=60)
    if child.is_alive():  # only our own child, by its handle
        child.terminate()
        child.join(timeout=10)


def test_hops_answer_while_another_process_computes_the_report(served) -> None:
    url, _, server = served
    ready, stop, computed = SPAWN.Event(), SPAWN.Event(), SPAWN.Value("i", 0)
    child = SPAWN.Process(target=report_in_a_long_read, args=(url, ready, stop, computed), daemon=True)
    child.start()
    try:
        # Once it has computed, its read transaction is open until it is told to stop.
        assert ready.wait(120), "the report process never computed"
        _play(server, "during-report")
        assert child.is_alive(), "the report process stopped before the hops were done"
    finally:
        stop.set()
        _stop(child)
    assert child.exitcode == 0 and computed.value >= 1


def test_hops_answer_while_the_analytics_page_is_opened_again_and_again(served) -> None:
    url, app, server = served
    operator = sign_in(app.test_client(), make_user(app, "looker@example.org", "viewer"))
    stop, pages, errors = threading.Event(), [], []

    def look() -> None:
        # Every hop changes the data (a USSD session), so each view computes the report again.
        while not stop.is_set():
            try:
                response = operator.get("/admin/analytics")
                pages.append(response.status_code)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
                return

    looker = threading.Thread(target=look, daemon=True)
    looker.start()
    try:
        while not pages and looker.is_alive():  # the first view is under way or done
            time.sleep(0.05)
        _play(server, "during-page")
    finally:
        stop.set()
        looker.join(timeout=120)
    assert not errors and pages and set(pages) == {200}
    database = Database(url)
    try:
        with database.session(read_only=True) as session:
            assert session.get(ReportCache, cache.cache_key("month", "")) is not None
    finally:
        database.dispose()


def test_control_a_held_write_lock_makes_a_hop_wait(tmp_path) -> None:
    with fresh_database(tmp_path, "sqlite") as url:
        app = create_app({"DATABASE_URL": url, "WEBHOOK_TOKEN": ""})
        try:
            with AppServer(app) as server:
                _hop(server, "warm-up", "")
                ready = SPAWN.Event()
                child = SPAWN.Process(target=write_lock_held, args=(url, ready, IN_TIME + 1.0), daemon=True)
                child.start()
                try:
                    assert ready.wait(120)
                    body, elapsed = _hop(server, "behind-a-writer", "")
                finally:
                    _stop(child)
        finally:
            app.extensions["smsgw.db"].dispose()
    # It waited for the lock: then answered, or gave up with the apology, either way too late.
    assert body.startswith("CON ") or body == apology("en")
    assert elapsed >= IN_TIME, f"only {elapsed:.2f}s"


def test_a_read_only_session_leaves_the_write_lock_free(tmp_path) -> None:
    with fresh_database(tmp_path, "sqlite") as url:
        database = Database(url)
        other = sqlite3.connect(sa.make_url(url).database, timeout=0, isolation_level=None)
        try:
            with database.session(read_only=True) as session:
                assert session.scalar(sa.select(sa.func.count()).select_from(SaleReport))  # reading, snapshot held
                other.execute("BEGIN IMMEDIATE")  # another process may write meanwhile
                other.execute("ROLLBACK")
            with database.session() as session:
                session.scalar(sa.select(sa.func.count()).select_from(SaleReport))
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
            database.dispose()


def test_smsgw_report_reads_without_the_write_lock(tmp_path) -> None:
    begun: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN"):
            begun.append(statement)

    with fresh_database(tmp_path, "sqlite") as url:
        sa.event.listen(sa.Engine, "before_cursor_execute", record)
        try:
            for args in (["bargaining", "--format", "json"], ["dispersion", "--commodity", "maize"]):
                result = CliRunner().invoke(main, ["report", *args], env={"DATABASE_URL": url}, catch_exceptions=False)
                assert result.exit_code == 0
        finally:
            sa.event.remove(sa.Engine, "before_cursor_execute", record)
    assert begun and set(begun) == {"BEGIN"}
