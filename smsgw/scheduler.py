"""The scheduler process: one APScheduler per deployment, jobs stored in the app's database.

APScheduler 3.x cannot share a job store between processes, so exactly one process
runs this (the Procfile's ``scheduler``); web workers never start jobs. Jobs have fixed
ids and ``replace_existing=True`` so a restart updates rather than duplicates them, and
``coalesce`` with a misfire grace time so a restart neither loses nor doubles a run.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler

from smsgw.config import load_settings
from smsgw.conversations.reminders import send_reminders
from smsgw.conversations.ussd.session import expire_sessions
from smsgw.db import Database, utcnow
from smsgw.messaging.cost_alert import check_daily_cost
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways import build_gateway
from smsgw.messaging.outbox import recover_stale
from smsgw.services.bulletins import Policy, due_runs, run_bulletin
from smsgw.services.orders import close_expired

log = logging.getLogger(__name__)
JOBSTORE_TABLE = "apscheduler_jobs"
STALE_SENDING = dt.timedelta(minutes=2)

_runtime: dict[str, Any] = {}


def _database() -> Database:
    """This process's Database, built once from the environment."""
    if "db" not in _runtime:
        _runtime["db"] = Database(load_settings()["DATABASE_URL"])
    return _runtime["db"]


def drain_job() -> None:
    """Send due outbox messages until none are due (replies first)."""
    db = _database()
    if "gateway" not in _runtime:
        _runtime["gateway"] = build_gateway(load_settings())
    with db.session() as session:
        recovered = recover_stale(session, STALE_SENDING)
    if any(recovered.values()):
        log.warning("settled messages left sending by a stopped drain: %s", recovered)
    while drain_once(db, _runtime["gateway"]).claimed:
        pass


def bulletin_job() -> None:
    """Run every bulletin that is due now in some market's local time (and not finished)."""
    import time

    settings = load_settings()
    db = _database()
    policy = Policy.from_settings(settings)
    pause_seconds = float(settings["BULLETIN_BATCH_PAUSE"])
    with db.session() as session:
        due = due_runs(session, utcnow())
    for kind, market, day in due:
        report = run_bulletin(db, kind, market, day, policy, pause=(lambda: time.sleep(pause_seconds)) if pause_seconds else None)
        log.info("bulletin %s %s %s: %s messages", kind, market, day, report.messages)


def orders_job() -> None:
    """Close orders past their deadline and remind members who have not committed."""
    db = _database()
    now = utcnow()
    with db.session() as session:
        closed = close_expired(session, now)
    with db.session() as session:
        reminded = send_reminders(session, now)
    if closed or reminded:
        log.info("orders: %s closed at deadline, %s reminders", closed, reminded)


def sessions_job() -> None:
    """Mark USSD sessions idle past AT's limit as ended and forget old half-done answers."""
    with _database().session() as session:
        expire_sessions(session, utcnow())


def cost_alert_job() -> None:
    """Warn (log and audit, once a day) when the day's SMS cost passes SMS_DAILY_COST_ALERT."""
    with _database().session() as session:
        check_daily_cost(session, load_settings())


def build_scheduler(settings: Mapping[str, Any]) -> BlockingScheduler:
    """A scheduler with our jobs on a job store in the app's database."""
    scheduler = BlockingScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=settings["DATABASE_URL"], tablename=JOBSTORE_TABLE)},
        job_defaults={"coalesce": True, "misfire_grace_time": 300, "max_instances": 1},
        timezone=settings["SMSGW_TIMEZONE"],
    )
    scheduler.add_job(
        "smsgw.scheduler:drain_job",
        "interval",
        seconds=3,
        id="outbox-drain",
        replace_existing=True,
        misfire_grace_time=30,
    )
    # Checked at start-up too: a scheduler restarted during a market's bulletin window
    # picks the unfinished run up at once.
    scheduler.add_job("smsgw.scheduler:bulletin_job", "interval", minutes=1, id="bulletins", replace_existing=True, next_run_time=dt.datetime.now(dt.timezone.utc))
    scheduler.add_job("smsgw.scheduler:orders_job", "interval", minutes=5, id="orders", replace_existing=True)
    scheduler.add_job("smsgw.scheduler:sessions_job", "interval", minutes=10, id="ussd-sessions", replace_existing=True)
    scheduler.add_job("smsgw.scheduler:cost_alert_job", "interval", minutes=10, id="cost-alert", replace_existing=True)
    return scheduler


def main(settings: Mapping[str, Any] | None = None) -> None:
    """Run the scheduler in the foreground until stopped."""
    settings = settings or load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s scheduler %(levelname)s %(message)s")
    # APScheduler logs every run of the 3-second drain at INFO; keep the terminal readable.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = build_scheduler(settings)
    log.info("scheduler started (jobs: %s)", ", ".join(job.id for job in scheduler.get_jobs()))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
