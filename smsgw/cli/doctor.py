"""`smsgw doctor`: is this deployment ready? One line per check, and the fix when it fails.

The facts `/healthz` already knows (schema, scheduler heartbeat, replies waiting, gateway
pause) come from ``smsgw.services.health``. This module adds what only an operator's
command should do: connect with the reason shown, make a real call to Africa's Talking
that sends nothing, and read the settings a production deployment needs, the sender ids
of the countries we reach, drains' expired leases, and free disk under SQLite.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
import requests
import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw import config
from smsgw.db import Database, utcnow
from smsgw.messaging.outbox import LEGACY_STALE
from smsgw.models import Contact, OutboundMessage
from smsgw.phones import country_of_prefix
from smsgw.services import health
from smsgw.services.bulletins import Policy
from smsgw.services.health import Check

log = logging.getLogger(__name__)

# SQLite needs room to grow, and a backup or VACUUM writes a whole copy of the file:
# less free space than this, or than twice the database, is a failure waiting to happen.
MIN_FREE_BYTES = 500 * 1024**2
# The scheduler settles expired leases on every drain pass (a few seconds apart): one
# expired this long ago means nobody is settling them.
LEASE_GRACE = dt.timedelta(minutes=2)
# (connect, read) seconds for the call to Africa's Talking.
AT_TIMEOUT = (3.05, 10.0)
NO_DATABASE = "not checked: no database"


def load_doctor_settings() -> dict[str, Any]:
    """The settings, validated like every command's, except production's missing secrets.

    Production without WEBHOOK_TOKEN or SECRET_KEY is refused at every start. The doctor
    reads such settings anyway (as development, then marked production again) so that it
    names that fault in its own line beside all the others. Any other bad setting stays
    the CLI's one-line refusal.
    """
    try:
        return config.load_settings()
    except config.ConfigError as refused:
        if os.environ.get("SMSGW_ENV") != "production":
            raise
        try:
            settings = config.load_settings({"SMSGW_ENV": "development"})
        except config.ConfigError:
            raise refused from None
        settings["SMSGW_ENV"] = "production"
        return settings


def _production(settings: Mapping[str, Any]) -> bool:
    return settings["SMSGW_ENV"] == "production"


def _reason(exc: BaseException) -> str:
    """The first line of the driver's message (never the URL, which may hold a password)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def database_check(settings: Mapping[str, Any]) -> tuple[Check, Database | None]:
    """Connect to DATABASE_URL; a missing SQLite file is reported, never created."""
    url = sa.make_url(settings["DATABASE_URL"])
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database and url.database != ":memory:" and not Path(url.database).is_file():
        return Check(
            "database",
            False,
            f"no database file at {url.database}: check DATABASE_URL, or run `smsgw init` to create it",
        ), None
    db: Database | None = None
    try:
        db = Database.from_settings(settings)
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001  (driver, network and file errors alike: each is this check's answer)
        if db is not None:
            db.dispose()
        return Check(
            "database", False, f"cannot connect ({_reason(exc)}): check DATABASE_URL and that the database is running"
        ), None
    return Check("database", True, f"{backend} answers"), db


def _account_data(settings: Mapping[str, Any]) -> tuple[int | None, Any]:
    """(HTTP status, answer) of AT's user-data endpoint for our account: it sends nothing."""
    from africastalking.Application import ApplicationService
    from africastalking.Service import AfricasTalkingException

    from smsgw.messaging.gateways.africastalking import point_at, record_status

    service = ApplicationService(settings["AT_USERNAME"], settings["AT_API_KEY"])
    if settings["AT_API_BASE"]:
        point_at(service, str(settings["AT_API_BASE"]))  # as the gateway does
    # The SDK raises the body alone for a non-2xx answer; see the gateway module for why
    # only its private GET helper shows the status.
    recorder = record_status(service, "get")
    try:
        answer = service.fetch_application_data(timeout=AT_TIMEOUT)
    except AfricasTalkingException as exc:
        return (recorder.status if recorder else None), str(exc)
    return (recorder.status if recorder else None), answer


def gateway_check(settings: Mapping[str, Any]) -> Check:
    """The console prints; Africa's Talking must accept our key (shown: the balance)."""
    if settings["SMSGW_GATEWAY"] != "africastalking":
        if _production(settings):
            return Check(
                "gateway",
                False,
                "console in production: SMS are printed, never sent: set SMSGW_GATEWAY=africastalking with "
                "AT_USERNAME and AT_API_KEY",
            )
        return Check(
            "gateway", True, "console: SMS are printed here, not sent (SMSGW_GATEWAY=africastalking sends them)"
        )
    username = settings["AT_USERNAME"]
    if _production(settings) and username == "sandbox":
        return Check(
            "gateway",
            False,
            "AT_USERNAME=sandbox in production: SMS reach only AT's simulator: set your app's username and API key",
        )
    base = settings["AT_API_BASE"] or "Africa's Talking"
    try:
        status, answer = _account_data(settings)
    except requests.RequestException as exc:
        return Check(
            "gateway",
            False,
            f"could not reach {base} ({type(exc).__name__}): check the network"
            + (" and AT_API_BASE" if settings["AT_API_BASE"] else ""),
        )
    if status in (401, 403):
        return Check(
            "gateway",
            False,
            f"Africa's Talking refused the API key (HTTP {status}): set AT_USERNAME and AT_API_KEY from the "
            "dashboard's API key page (the sandbox has its own key)",
        )
    if status is None or not 200 <= status < 300:
        return Check(
            "gateway",
            False,
            f"Africa's Talking answered HTTP {status or '?'} ({' '.join(str(answer).split())[:80]}): try again later",
        )
    data = answer.get("UserData") if isinstance(answer, Mapping) else None
    balance = str(data.get("balance", "")) if isinstance(data, Mapping) else ""
    if not balance:
        return Check(
            "gateway",
            False,
            f"unexpected answer from {base}"
            + (": is AT_API_BASE right?" if settings["AT_API_BASE"] else ": try again later"),
        )
    try:
        empty = decimal.Decimal(balance.split()[-1]) <= 0
    except (decimal.InvalidOperation, IndexError):
        empty = False  # a balance we cannot read is still an answer that took our key
    if empty:
        return Check("gateway", False, f"account {username}: balance {balance}: top up (AT refuses to send at zero)")
    return Check("gateway", True, f"account {username} accepted the key; balance {balance}")


def contact_countries(session: so.Session) -> dict[str, int]:
    """Contacts who have not opted out, counted by the country of their phone number."""
    # Grouped by prefix in SQL (four characters hold every country code we serve), so
    # the count does not load every contact.
    head = sa.func.substr(Contact.phone, 1, 4)
    counts: dict[str, int] = {}
    query = sa.select(head, sa.func.count(Contact.id)).where(Contact.consent != "withdrawn").group_by(head)
    for prefix, count in session.execute(query):
        country = country_of_prefix(prefix or "")
        if country:
            counts[country] = counts.get(country, 0) + count
    return counts


def sender_ids_check(session: so.Session, settings: Mapping[str, Any]) -> Check:
    """Every country with contacts has a sender id: its own in SMSGW_SENDER_IDS (what its
    bulletins go out with), or AT_SENDER_ID, which every message without one of its own
    uses. Numbers of no known country are left out: no setting could name them.
    """
    senders = dict(Policy.from_settings(settings).sender_ids)
    if settings.get("AT_SENDER_ID"):
        for country in contact_countries(session):
            senders.setdefault(country, str(settings["AT_SENDER_ID"]))
    countries = contact_countries(session)
    if not countries:
        return Check("sender ids", True, "no contacts yet")
    missing = sorted(country for country in countries if country not in senders)
    if missing:
        listed = ", ".join(f"{country} ({countries[country]} contacts)" for country in missing)
        example = ",".join(f"{country}=YOURID" for country in missing)
        return Check(
            "sender ids",
            False,
            f"no sender id for {listed}: add {example} to SMSGW_SENDER_IDS, or set AT_SENDER_ID (else AT sends from "
            "its shared default)",
        )
    return Check(
        "sender ids",
        True,
        ", ".join(f"{country} {senders[country]} ({countries[country]} contacts)" for country in sorted(countries)),
    )


def webhook_token_check(settings: Mapping[str, Any]) -> Check:
    """In production, AT's callbacks must carry a secret token."""
    if not _production(settings):
        return Check(
            "webhook token",
            True,
            f"{'set' if settings['WEBHOOK_TOKEN'] else 'not set'}; required only when SMSGW_ENV=production",
        )
    if not settings["WEBHOOK_TOKEN"]:
        return Check(
            "webhook token",
            False,
            "SMSGW_ENV=production without WEBHOOK_TOKEN: anyone can post fake SMS and USSD: set a long random "
            "WEBHOOK_TOKEN and add ?token=... to AT's callback URLs",
        )
    return Check("webhook token", True, "set")


def secret_key_check(settings: Mapping[str, Any]) -> Check:
    """In production, sessions must be signed with a key of our own."""
    # The built-in key is in the source for everyone to read.
    default = config.defaults()["SECRET_KEY"]
    if not _production(settings):
        return Check("secret key", True, "required only when SMSGW_ENV=production")
    if not settings["SECRET_KEY"] or settings["SECRET_KEY"] == default:
        return Check(
            "secret key",
            False,
            "SECRET_KEY is the built-in development key: anyone can forge an operator's sign-in: set a long random "
            "SECRET_KEY",
        )
    return Check("secret key", True, "set")


def leases_check(session: so.Session, now: dt.datetime) -> Check:
    """No message stays `sending` long after its drain's lease ran out."""
    out = OutboundMessage
    cutoff = now - LEASE_GRACE
    expired = sa.or_(
        out.lease_until < cutoff, sa.and_(out.lease_until.is_(None), out.claimed_at < cutoff - LEGACY_STALE)
    )
    count, oldest = session.execute(
        sa.select(sa.func.count(out.id), sa.func.min(sa.func.coalesce(out.lease_until, out.claimed_at))).where(
            out.status == "sending", expired
        )
    ).one()
    if not count:
        return Check("leases", True, "no message left `sending` by a stopped drain")
    minutes = int((now - oldest).total_seconds() // 60) if oldest else 0
    return Check(
        "leases",
        False,
        f"{count} {'message' if count == 1 else 'messages'} left `sending` by a stopped drain (lease ran out "
        f"{minutes} min ago): the scheduler settles them; is `smsgw scheduler` running?",
    )


def _size(amount: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TB"


def disk_check(settings: Mapping[str, Any]) -> Check:
    """A SQLite file's filesystem has room for the database to grow and be backed up."""
    url = sa.make_url(settings["DATABASE_URL"])
    if url.get_backend_name() != "sqlite":
        return Check(
            "disk",
            True,
            f"not checked: {url.get_backend_name()} keeps its data on its own server (watch its disk there)",
        )
    if not url.database or url.database == ":memory:":
        return Check("disk", True, "not checked: the database is in memory")
    path = Path(url.database).resolve()
    where = path
    while not where.exists():
        where = where.parent
    usage = shutil.disk_usage(where)
    size = sum(part.stat().st_size for part in (path, Path(f"{path}-wal")) if part.is_file())
    need = max(MIN_FREE_BYTES, 2 * size)
    detail = f"{_size(usage.free)} free of {_size(usage.total)} on the database's filesystem (database {_size(size)})"
    if usage.free < need:
        return Check(
            "disk", False, f"{detail}: free at least {_size(need)} (SQLite grows, and a backup writes a whole copy)"
        )
    return Check("disk", True, detail)


def _guarded(session: so.Session, name: str, probe: Callable[[], Check], schema_ok: bool) -> Check:
    """One check on the database; an error becomes its failed line, never a traceback."""
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001  (the doctor reports every failure, whatever its kind)
        log.warning("doctor check %s failed: %s", name, _reason(exc))
        session.rollback()
        return Check(name, False, _could_not(f"could not check ({type(exc).__name__})", schema_ok))


def _could_not(detail: str, schema_ok: bool) -> str:
    return detail + (": run `smsgw init` first" if not schema_ok else ": see the warning above")


def _from_health(found: Check, schema_ok: bool) -> Check:
    """A health check as the doctor shows it: the pause named for what it stops, fixes added."""
    if found.name == "gateway":
        found = dataclasses.replace(found, name="sending")
        if found.ok:
            return dataclasses.replace(found, detail="not paused")
        if not found.detail.startswith("could not"):
            return dataclasses.replace(
                found, detail=f"{found.detail}: fix the cause, then `smsgw outbox drain` tries again at once"
            )
    if not found.ok and found.detail.startswith("could not check"):
        return dataclasses.replace(found, detail=_could_not(found.detail, schema_ok))
    return found


def run_checks(settings: Mapping[str, Any], now: dt.datetime | None = None) -> list[Check]:
    """Every check in the order printed; never raises for what it checks."""
    now = now or utcnow()
    database, db = database_check(settings)
    gateway = gateway_check(settings)
    settings_checks = [webhook_token_check(settings), secret_key_check(settings)]
    if db is None:
        skipped = {
            name: Check(name, False, NO_DATABASE)
            for name in ("schema", "sender ids", "scheduler", "replies", "sending", "leases")
        }
    else:
        try:
            with db.session(read_only=True) as session:
                found = {check.name: check for check in health.check(session, now)}
                schema_ok = found["schema"].ok
                skipped = {
                    "schema": found["schema"],
                    "sender ids": _guarded(
                        session, "sender ids", lambda: sender_ids_check(session, settings), schema_ok
                    ),
                    "scheduler": _from_health(found["scheduler"], schema_ok),
                    "replies": _from_health(found["replies"], schema_ok),
                    "sending": _from_health(found["gateway"], schema_ok),
                    "leases": _guarded(session, "leases", lambda: leases_check(session, now), schema_ok),
                }
        finally:
            db.dispose()
    return [
        database,
        skipped["schema"],
        gateway,
        skipped["sender ids"],
        *settings_checks,
        skipped["scheduler"],
        skipped["replies"],
        skipped["sending"],
        skipped["leases"],
        disk_check(settings),
    ]


def render(check: Check) -> str:
    """One line: OK or FAIL (green or red on a terminal), the check's name, its detail."""
    mark = click.style("OK  ", fg="green") if check.ok else click.style("FAIL", fg="red", bold=True)
    return f"{mark} {check.name}: {check.detail}"


class _OneLine(logging.Filter):
    """A warning as its first line, without the SQL or traceback: the FAIL line says what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        lines = record.getMessage().strip().splitlines()
        record.msg, record.args = (lines[0] if lines else ""), ()
        record.exc_info, record.exc_text = None, None
        return True


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check this deployment, one line per check with the fix; exit 0 only when all pass."""
    settings = load_doctor_settings()
    quiet = _OneLine()
    health.log.addFilter(quiet)
    # Reading the schema's revision logs Alembic's set-up at INFO: noise between our lines.
    alembic = logging.getLogger("alembic")
    level = alembic.level
    alembic.setLevel(max(level, logging.WARNING))
    try:
        checks = run_checks(settings)
    finally:
        health.log.removeFilter(quiet)
        alembic.setLevel(level)
    for check in checks:
        click.echo(render(check))
    if not all(check.ok for check in checks):
        ctx.exit(1)
