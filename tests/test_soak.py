"""A bounded soak on PostgreSQL: USSD traffic at half the measured capacity, against the
production server (gunicorn, the Procfile's workers and threads), while a bulletin run
drains through the real SDK to the fake AT. Zero errors, memory flat, no connection leak.

The capacity is measured first, a few seconds at saturation. The soak lasts
SMSGW_SOAK_SECONDS (600 by default, as the issue asks; set it lower for a quick look).
It runs in every PostgreSQL pass, CI's included; ``-m "not slow"`` leaves it out.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa

from smsgw.db import Database, utcnow
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways.africastalking import AfricasTalkingGateway
from smsgw.models import Commodity, Contact, Market, OutboundMessage, Subscription
from smsgw.services.bulletins import Policy, run_bulletin
from tests.fake_at import FakeAfricasTalking
from tests.support.databases import fresh_database
from tests.support.ports import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
]
SOAK_SECONDS = float(os.environ.get("SMSGW_SOAK_SECONDS", "600"))
CAPACITY_SECONDS = 5.0
CLIENTS = 16
CALLERS = 200
SUBSCRIBERS = 4000
WORKERS, POOL_SIZE = 2, 5  # the Procfile's gunicorn workers; smsgw.db's pool_size
APP_NAME = "smsgw-soak-web"
# A caller looks up a price and subscribes to it (once per crop and market: idempotent).
PATHS = [["1", "1", "2"], ["1", "2", "1", "1"], ["2"], ["1", "1", "3", "1"], ["5"]]
MEMORY_SLACK = 30 * 1024 * 1024  # bytes a warm worker may still grow over the soak


@dataclass
class Tally:
    """What the callers saw, shared by their threads."""

    hops: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, error: str | None = None) -> None:
        with self.lock:
            self.hops += 1
            if error:
                self.errors.append(error)


@pytest.fixture()
def soak_db(tmp_path) -> Iterator[str]:
    """A seeded database with callers ready to dial and many bulletin subscribers."""
    with fresh_database(tmp_path, "postgresql") as url:
        db = Database(url)
        with db.session() as session:
            nakuru = session.scalar(sa.select(Market).where(Market.code == "nakuru"))
            maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
            people = [
                {
                    "phone": f"+2547366{i:05d}",
                    "language": "en",
                    "language_chosen": True,
                    "consent": "granted",
                    "created_at": utcnow(),
                }
                for i in range(CALLERS)
            ]
            people += [
                {
                    "phone": f"+2547377{i:05d}",
                    "language": ("en", "sw")[i % 2],
                    "consent": "granted",
                    "home_market_id": nakuru.id,
                    "created_at": utcnow(),
                }
                for i in range(SUBSCRIBERS)
            ]
            ids = session.scalars(sa.insert(Contact).returning(Contact.id), people).all()
            session.execute(
                sa.insert(Subscription),
                [
                    {"contact_id": cid, "commodity_id": maize.id, "market_id": nakuru.id, "created_at": utcnow()}
                    for cid in ids[CALLERS:]
                ],
            )
        db.dispose()
        yield url


@pytest.fixture()
def web(soak_db: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """gunicorn serving the app as the Procfile does; (base URL, process, its log)."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    url = sa.make_url(soak_db).update_query_dict({"application_name": APP_NAME}).render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": url, "WEBHOOK_TOKEN": "", "SMSGW_GATEWAY": "console"}
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(WORKERS),
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "smsgw:create_app()",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.post(
                    f"{base}/at/ussd", data={"sessionId": "up", "phoneNumber": "+254736600000", "text": ""}, timeout=30
                ).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline and server.poll() is None, log_path.read_text()
            time.sleep(0.2)
        yield base, server, log_path
    finally:
        server.terminate()
        server.wait(timeout=30)


def _workers(server: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _rss(pids: list[int]) -> int:
    """Resident memory of the worker processes, in bytes."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _connections(probe: sa.Engine) -> int:
    with probe.connect() as conn:
        return conn.scalar(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"), {"name": APP_NAME}
        )


def _caller(base: str, tally: Tally, stop: threading.Event, index: int, interval: float) -> None:
    """One client thread: USSD sessions hop after hop, paced at ``interval`` (0: flat out)."""
    http = requests.Session()
    n, next_at = 0, time.monotonic()
    try:
        while not stop.is_set():
            n += 1
            # Each client has phones of its own: one handset is in one USSD session at a time.
            phone = f"+2547366{index * (CALLERS // CLIENTS) + n % (CALLERS // CLIENTS):05d}"
            path = PATHS[(index + n) % len(PATHS)]
            session_id = f"soak-{index}-{n}"
            for hop in range(len(path) + 1):
                if stop.is_set():
                    return
                if interval:
                    next_at += interval
                    time.sleep(max(0.0, next_at - time.monotonic()))
                try:
                    answer = http.post(
                        f"{base}/at/ussd",
                        data={
                            "sessionId": session_id,
                            "phoneNumber": phone,
                            "serviceCode": "*384#",
                            "text": "*".join(path[:hop]),
                        },
                        timeout=30,
                    )
                    body = answer.text
                    bad = answer.status_code != 200 or body[:4] not in ("CON ", "END ") or "went wrong" in body
                    tally.add(f"{answer.status_code} {body[:60]!r}" if bad else None)
                except requests.RequestException as exc:
                    tally.add(type(exc).__name__)
    finally:
        http.close()


def _load(base: str, seconds: float, interval: float) -> Tally:
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=_caller, args=(base, tally, stop, i, interval)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return tally


def test_soak_at_half_capacity_with_a_bulletin_draining(soak_db, web) -> None:
    base, server, log_path = web
    probe = sa.create_engine(soak_db)
    db = Database(soak_db)
    try:
        saturated = _load(base, CAPACITY_SECONDS, 0.0)
        capacity = saturated.hops / CAPACITY_SECONDS
        assert saturated.errors == [] and capacity > 5, (capacity, saturated.errors[:5])
        workers = _workers(server)
        warm_rss, warm_connections = _rss(workers), _connections(probe)

        # The bulletin: queued now, drained by a drain of our own during the soak.
        with db.session() as session:
            nakuru = session.scalar(sa.select(Market).where(Market.code == "nakuru"))
            today = utcnow().astimezone(ZoneInfo(nakuru.timezone)).date()
        report = run_bulletin(db, "daily", "nakuru", today, Policy(quiet_start=24, quiet_end=0))
        assert report.messages >= SUBSCRIBERS
        stop_drain = threading.Event()
        drain_errors: list[str] = []
        with FakeAfricasTalking(api_key="soak-key", delay_seconds=0.05) as fake:
            gateway = AfricasTalkingGateway("sandbox", "soak-key", api_base=fake.base_url)

            def drain() -> None:
                while not stop_drain.is_set():
                    stats = drain_once(db, gateway, batch_size=200, chunk=25)
                    drain_errors.extend(stats.errors)
                    if not stats.claimed:
                        stop_drain.wait(0.5)

            drainer = threading.Thread(target=drain)
            drainer.start()
            samples: list[int] = []
            tally = Tally()
            started = time.monotonic()
            interval = CLIENTS / (capacity / 2)  # each client's share of half the capacity
            for part in range(4):
                part_tally = _load(base, SOAK_SECONDS / 4, interval)
                tally.hops += part_tally.hops
                tally.errors += part_tally.errors
                samples.append(_rss(workers))
            elapsed = time.monotonic() - started
            stop_drain.set()
            drainer.join(timeout=60)
            received = fake.received()
        time.sleep(3)  # idle: pooled connections settle
        idle_connections = _connections(probe)
        with db.session() as session:
            statuses = Counter(
                session.scalars(sa.select(OutboundMessage.status).where(OutboundMessage.purpose == "bulletin")).all()
            )

        rate = tally.hops / elapsed
        print(f"\nsoak: capacity {capacity:.0f} hops/s, soak {rate:.0f} hops/s for {elapsed:.0f}s ({tally.hops} hops), "
              f"rss warm {warm_rss >> 20} MiB then {[s >> 20 for s in samples]} MiB, "
              f"connections warm {warm_connections} idle {idle_connections}, bulletin {dict(statuses)}")
        assert tally.errors == [], tally.errors[:10]
        assert rate >= 0.35 * capacity, "the soak ran well below half the capacity"
        assert drain_errors == []
        assert (
            statuses == {"sent": report.messages} and len(received) == report.messages and set(received.values()) == {1}
        )
        # Memory flat: a warm worker does not keep growing under steady load.
        assert _workers(server) == workers, "a worker died or was replaced"
        assert max(samples) - warm_rss < MEMORY_SLACK and samples[-1] - samples[0] < MEMORY_SLACK
        # No connection leak: idle, each worker keeps at most its pool; our own drain none.
        assert idle_connections <= WORKERS * POOL_SIZE and idle_connections <= max(
            warm_connections, WORKERS * POOL_SIZE
        )
        assert db.engine.pool.checkedout() == 0
        log = log_path.read_text()
        assert "Traceback" not in log and "Exception on" not in log, log[-2000:]
    finally:
        db.dispose()
        probe.dispose()
