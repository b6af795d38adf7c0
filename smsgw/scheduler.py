"""The scheduler process: one APScheduler per deployment, jobs stored in the app's database.

APScheduler 3.x cannot share a job store between processes, so exactly one process
runs this (the Procfile's ``scheduler``); web workers never start jobs. Jobs have fixed
ids and ``replace_existing=True`` so a restart updates rather than duplicates them, and
``coalesce`` with a misfire grace time so a restart neither loses nor doubles a run.

The process never dies of a database error: each job is guarded (a failure is one log
line, and the job waits with backoff before its next try), the job store retries its
writes until the database answers again, and ``main`` restarts the scheduler if anything
still escapes. A heartbeat row tells ``/healthz`` and the dashboard that it is alive.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy.exc
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler

from smsgw.config import load_settings
from smsgw.conversations.reminders import send_reminders
from smsgw.conversations.ussd.session import expire_sessions
from smsgw.db import Database, error_line, make_engine, utcnow
from smsgw.messaging.cost_alert import check_daily_cost
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways import build_gateway
from smsgw.messaging.outbox import recover_stale
from smsgw.services import runtime_state
from smsgw.services.bulletins import Policy, due_runs, run_bulletin
from smsgw.services.orders import close_expired
from smsgw.services.rollouts import enrol_due

log = logging.getLogger(__name__)
JOBSTORE_TABLE = "apscheduler_jobs"

# A failing job waits this long before its next try, doubling up to the cap: short
# enough that replies flow again within seconds of the database coming back.
BACKOFF_FIRST = 2.0
BACKOFF_MAX = 15.0
HEARTBEAT_SECONDS = 10

_runtime: dict[str, Any] = {}
_failures: dict[str, tuple[int, float]] = {}  # job -> (consecutive failures, next try)


def guarded(job: Callable[[], None]) -> Callable[[], None]:
    """Run ``job`` so that any exception is one log line and the job backs off.

    After a failure the job's next runs are skipped until its backoff has passed (2 s,
    4 s, ... 15 s); the first success logs that it works again.
    """
    name = job.__name__

    @functools.wraps(job)
    def run() -> None:
        failures, next_try = _failures.get(name, (0, 0.0))
        if time.monotonic() < next_try:
            return
        try:
            job()
        except Exception as exc:  # noqa: BLE001  (a job never ends the process)
            failures += 1
            wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
            _failures[name] = (failures, time.monotonic() + wait)
            log.warning("job %s failed (%s); trying again in %.0f s", name, error_line(exc), wait)
            return
        if failures:
            log.warning("job %s works again after %d failures", name, failures)
        _failures.pop(name, None)

    return run


def _settings() -> Mapping[str, Any]:
    """The settings ``main`` was given (or, for a job run alone, ``load_settings()`` once)."""
    if "settings" not in _runtime:
        _runtime["settings"] = load_settings()
    return _runtime["settings"]


def _database() -> Database:
    """This process's Database, built once from its settings."""
    if "db" not in _runtime:
        _runtime["db"] = Database.from_settings(_settings())
    return _runtime["db"]


@guarded
def drain_job() -> None:
    """Send due outbox messages until none are due (replies first)."""
    settings = _settings()
    db = _database()
    if "gateway" not in _runtime:
        _runtime["gateway"] = build_gateway(settings)
        # A restart is how an operator applies a fixed key: try a paused gateway at once.
        _runtime["probe"] = True
    with db.session() as session:
        recovered = recover_stale(session)
    if any(recovered.values()):
        log.warning("settled messages left sending by a stopped drain: %s", recovered)
    lease = dt.timedelta(seconds=int(settings["OUTBOX_LEASE_SECONDS"]))
    while drain_once(db, _runtime["gateway"], lease=lease, probe=_runtime.pop("probe", False)).claimed:
        pass


@guarded
def heartbeat_job() -> None:
    """Record that the scheduler is alive (read by /healthz, the dashboard, doctor)."""
    with _database().session() as session:
        runtime_state.put(session, runtime_state.SCHEDULER, {"pid": os.getpid(), "host": socket.gethostname()})


@guarded
def bulletin_job() -> None:
    """Run every bulletin that is due now in some market's local time (and not finished)."""
    settings = _settings()
    db = _database()
    policy = Policy.from_settings(settings)
    pause_seconds = float(settings["BULLETIN_BATCH_PAUSE"])
    with db.session() as session:
        due = due_runs(session, utcnow())
    for kind, market, day in due:
        report = run_bulletin(
            db, kind, market, day, policy, pause=(lambda: time.sleep(pause_seconds)) if pause_seconds else None
        )
        log.info("bulletin %s %s %s: %s messages", kind, market, day, report.messages)


@guarded
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


@guarded
def sessions_job() -> None:
    """Mark USSD sessions idle past AT's limit as ended and forget old half-done answers."""
    with _database().session() as session:
        expire_sessions(session, utcnow())


@guarded
def rollout_job() -> None:
    """Enrol the farmers of rollout waves that have started (idempotent; hourly)."""
    zone = _settings()["SMSGW_TIMEZONE"]
    with _database().session() as session:
        done = enrol_due(session, utcnow().astimezone(ZoneInfo(zone)).date())
    for item in done:
        log.info("rollout %s wave %s: %s farmers enrolled", item.rollout, item.wave, item.enrolled)


@guarded
def cost_alert_job() -> None:
    """Warn (log and audit, once a day) when the day's SMS cost passes SMS_DAILY_COST_ALERT."""
    with _database().session() as session:
        check_daily_cost(session, _settings())


class JobStoreUnavailable(Exception):
    """The job store's database did not answer (the message is one line)."""


class ResilientJobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy job store on our engine, retrying writes through outages.

    APScheduler catches a failing ``get_due_jobs`` (and tries again later) but lets an
    error from ``update_job`` or ``get_next_run_time`` end its main loop, and so the
    process: those calls wait here, one log line per failure, until the database answers.
    """

    def __init__(self, url: str, connect_timeout: int | None = None) -> None:
        super().__init__(engine=make_engine(url, connect_timeout), tablename=JOBSTORE_TABLE)

    def _retrying(self, call: Callable[[], Any], what: str) -> Any:
        failures = 0
        while True:
            try:
                return call()
            except sqlalchemy.exc.SQLAlchemyError as exc:
                failures += 1
                wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
                log.warning("job store: %s failed (%s); trying again in %.0f s", what, error_line(exc), wait)
                time.sleep(wait)

    def get_due_jobs(self, now: Any) -> Any:
        """Due jobs; an unreachable database becomes a one-line error APScheduler logs and retries."""
        try:
            return super().get_due_jobs(now)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise JobStoreUnavailable(error_line(exc)) from None

    def update_job(self, job: Any) -> None:
        """Store a job's next run time, waiting for the database if it is away."""
        self._retrying(lambda: super(ResilientJobStore, self).update_job(job), "update_job")

    def remove_job(self, job_id: str) -> None:
        """Remove a job, waiting for the database if it is away."""
        self._retrying(lambda: super(ResilientJobStore, self).remove_job(job_id), "remove_job")

    def get_next_run_time(self) -> Any:
        """The earliest next run time, waiting for the database if it is away."""
        return self._retrying(lambda: super(ResilientJobStore, self).get_next_run_time(), "get_next_run_time")


def build_scheduler(settings: Mapping[str, Any]) -> BlockingScheduler:
    """A scheduler with our jobs on a job store in the app's database."""
    scheduler = BlockingScheduler(
        jobstores={"default": ResilientJobStore(settings["DATABASE_URL"], int(settings["DATABASE_CONNECT_TIMEOUT"]))},
        job_defaults={"coalesce": True, "misfire_grace_time": 300, "max_instances": 1},
        timezone=settings["SMSGW_TIMEZONE"],
        # When the job store cannot be read, look again this soon (APScheduler's default: 10 s).
        jobstore_retry_interval=3,
    )
    scheduler.add_job(
        "smsgw.scheduler:drain_job",
        "interval",
        seconds=3,
        id="outbox-drain",
        replace_existing=True,
        misfire_grace_time=30,
    )
    scheduler.add_job(
        "smsgw.scheduler:heartbeat_job", "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat", replace_existing=True,
        misfire_grace_time=30, next_run_time=dt.datetime.now(dt.UTC),
    )
    # Checked at start-up too: a scheduler restarted during a market's bulletin window
    # picks the unfinished run up at once.
    scheduler.add_job(
        "smsgw.scheduler:bulletin_job",
        "interval",
        minutes=1,
        id="bulletins",
        replace_existing=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    scheduler.add_job("smsgw.scheduler:orders_job", "interval", minutes=5, id="orders", replace_existing=True)
    scheduler.add_job("smsgw.scheduler:sessions_job", "interval", minutes=10, id="ussd-sessions", replace_existing=True)
    scheduler.add_job(
        "smsgw.scheduler:rollout_job", "interval", hours=1, id="rollout-waves", replace_existing=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    scheduler.add_job("smsgw.scheduler:cost_alert_job", "interval", minutes=10, id="cost-alert", replace_existing=True)
    return scheduler


def main(settings: Mapping[str, Any] | None = None) -> None:
    """Run the scheduler in the foreground until stopped; never exit on a database error.

    Anything that still escapes APScheduler (the job store unreachable at start-up, say)
    is one log line; the scheduler is then built and started again after a backoff.
    """
    from smsgw.startup import check_ready

    settings = settings or load_settings()
    # Every job reads these, never the environment again.
    _runtime["settings"] = settings
    check_ready(settings)
    from smsgw.logs import configure_logging

    configure_logging(settings, "scheduler")  # also keeps APScheduler's line per drain run out
    failures = 0
    while True:
        scheduler: BlockingScheduler | None = None
        try:
            scheduler = build_scheduler(settings)
            log.info("scheduler started (jobs: %s)", ", ".join(job.id for job in scheduler.get_jobs()))
            started = time.monotonic()
            scheduler.start()
            return
        except (KeyboardInterrupt, SystemExit):
            log.info("scheduler stopped")
            return
        except Exception as exc:  # noqa: BLE001  (the scheduler starts again, whatever stopped it)
            failures = 1 if scheduler is not None and time.monotonic() - started > 60 else failures + 1
            wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
            log.warning("scheduler stopped by an error (%s); starting again in %.0f s", error_line(exc), wait)
            _shutdown(scheduler)
            time.sleep(wait)


def _shutdown(scheduler: BlockingScheduler | None) -> None:
    if scheduler is None:
        return
    try:
        scheduler.shutdown(wait=False)
    except Exception as exc:  # noqa: BLE001  (already stopped, or its job store unreachable: nothing to keep)
        log.info("scheduler shutdown: %s", error_line(exc))
