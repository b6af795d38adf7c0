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
from smsgw.db import Database
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways import build_gateway
from smsgw.messaging.outbox import recover_stale

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
