"""The ``smsgw`` command line: set up, seed, run, and simulate."""
from __future__ import annotations

import datetime as dt
import sys
import uuid
from typing import Any

import click
import sqlalchemy.exc

from smsgw.config import LANGUAGES, ConfigError, load_settings
from smsgw.db import Database
from smsgw.phones import InvalidPhone, normalize_phone


class SettingError(click.ClickException):
    """A bad setting: one line, and exit code 2 so that supervisors do not retry in a loop."""

    exit_code = 2


class Commands(click.Group):
    """A command group that turns known errors into one clear line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise SettingError(str(exc)) from None
        except InvalidPhone as exc:
            raise click.ClickException(str(exc)) from None
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(f"cannot use the database: {reason} (check DATABASE_URL)") from None


def _settings() -> dict[str, Any]:
    return load_settings()


def _database(settings: dict[str, Any]) -> Database:
    return Database.from_settings(settings)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """smsgw: market prices, buyer standards and group orders by USSD and SMS."""
    import os

    from smsgw.logs import configure_logging

    # From the environment alone: a wrong setting elsewhere is for the command to report.
    # ``serve`` and ``scheduler`` are the web and scheduler processes from their first line.
    command = click.get_current_context().invoked_subcommand or ""
    configure_logging(os.environ, {"serve": "web", "scheduler": "scheduler"}.get(command, "cli"))


@main.command()
def init() -> None:
    """Create or upgrade the database schema to the latest migration."""
    from smsgw.migrate import upgrade

    settings = _settings()
    upgrade(settings["DATABASE_URL"])
    click.echo("database is at the latest schema")


@main.command()
@click.option("--demo", is_flag=True, required=True, help="Load the demo catalog, people and 120 days of prices.")
def seed(demo: bool) -> None:
    """Load demo content from content/ (running it twice changes nothing)."""
    _seed(_settings())


def _seed(settings: dict[str, Any]) -> None:
    from smsgw.resources import content_dir
    from smsgw.services.seeding import seed_demo

    db = _database(settings)
    with db.session() as session:
        result = seed_demo(session, content_dir(), dt.date.today(), progress=lambda msg: click.echo(f"  seeding {msg}"))
    click.echo(f"demo content loaded ({result['prices_added']} price rows added)")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve(host: str, port: int) -> None:
    """Run the web app with Flask's development server (production: gunicorn, see Procfile)."""
    from smsgw import create_app

    create_app().run(host=host, port=port, use_reloader=False)


@main.command()
def scheduler() -> None:
    """Run the scheduler process: outbox drain and timed jobs."""
    from smsgw.scheduler import main as run_scheduler

    run_scheduler(_settings())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def demo(host: str, port: int) -> None:
    """Migrate, seed the demo, then run and supervise the web app and the scheduler."""
    import os

    from smsgw import create_app
    from smsgw.migrate import upgrade
    from smsgw.supervisor import Supervisor

    settings = _settings()
    upgrade(settings["DATABASE_URL"])
    _seed(settings)
    # Built here only to check the settings: a bad one is one clear line now, not a web
    # child that fails and is restarted forever.
    create_app()
    click.echo(f"smsgw demo on http://{host}:{port}  (outbound SMS print here; Ctrl-C stops)")
    python = [sys.executable, "-m", "smsgw"]
    supervisor = Supervisor(
        {
            "web": [*python, "serve", "--host", host, "--port", str(port)],
            "scheduler": [*python, "scheduler"],
        },
        # Unbuffered, so SMS printed by the scheduler show at once even when output is piped.
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    supervisor.run()


@main.group()
def simulate() -> None:
    """Play USSD or SMS as a phone would, against the same code as the webhooks."""


@simulate.command("ussd")
@click.option("--phone", required=True, help="The caller's number, e.g. +254700000001.")
@click.option("--lang", type=click.Choice(LANGUAGES), help="Show screens in this language.")
@click.option("--interactive", is_flag=True, help="Play a whole session at the prompt.")
@click.argument("path", default="")
def simulate_ussd(phone: str, lang: str | None, interactive: bool, path: str) -> None:
    """Print the USSD screen reached by PATH (inputs joined by *, e.g. "1*2")."""
    from smsgw.conversations.ussd.session import handle_hop

    settings = _settings()
    phone = normalize_phone(phone, settings["SMSGW_DEFAULT_REGION"])
    db = _database(settings)
    session_id = f"sim-{uuid.uuid4().hex[:12]}"

    def hop(text: str) -> str:
        with db.session() as session:
            return handle_hop(session, settings, session_id=session_id, phone=phone, text=text, lang=lang)

    body = hop(path)
    click.echo(body)
    inputs = [path] if path else []
    while interactive and body.startswith("CON "):
        inputs.append(click.prompt(">", prompt_suffix=" "))
        body = hop("*".join(inputs))
        click.echo(body)


@simulate.command("sms")
@click.option("--phone", required=True, help="The sender's number, e.g. +254700000001.")
@click.argument("text")
def simulate_sms(phone: str, text: str) -> None:
    """Send TEXT as an inbound SMS and print its reply (nothing else in the outbox is sent)."""
    from smsgw.conversations.sms.intake import receive
    from smsgw.messaging.drain import drain_once
    from smsgw.messaging.gateways.console import ConsoleGateway

    settings = _settings()
    phone = normalize_phone(phone, settings["SMSGW_DEFAULT_REGION"])
    db = _database(settings)
    with db.session() as session:
        message = receive(session, settings, {"from": phone, "text": text, "id": f"sim-{uuid.uuid4().hex}"})
        inbound_id = message.id if message is not None else None
        error = message.error if message is not None and message.status == "error" else None
    if inbound_id is None:
        return
    if error:
        click.echo(f"the message could not be handled: {error}", err=True)
    # Only what this SMS caused: other people's queued messages are the real drain's, and
    # the console would mark them sent although they never reach a phone.
    keys = [f"reply:{inbound_id}", f"apology:{inbound_id}"]
    gateway = ConsoleGateway()
    while drain_once(db, gateway, keys=keys).claimed:
        pass


@main.group(invoke_without_command=True)
@click.pass_context
def outbox(ctx: click.Context) -> None:
    """Show the outbox: messages by state (``smsgw outbox drain`` sends due ones now)."""
    if ctx.invoked_subcommand is not None:
        return
    import sqlalchemy as sa

    from smsgw.models import OutboundMessage

    db = _database(_settings())
    with db.session() as session:
        rows = session.execute(
            sa.select(OutboundMessage.status, OutboundMessage.purpose, sa.func.count())
            .group_by(OutboundMessage.status, OutboundMessage.purpose)
            .order_by(OutboundMessage.status, OutboundMessage.purpose)
        ).all()
        failures = session.execute(
            sa.select(OutboundMessage.last_error, sa.func.count())
            .where(OutboundMessage.status == "failed")
            .group_by(OutboundMessage.last_error)
            .order_by(sa.func.count().desc())
            .limit(5)
        ).all()
    if not rows:
        click.echo("the outbox is empty")
    for status, purpose, count in rows:
        click.echo(f"{status:<10} {purpose:<9} {count:>8}")
    for reason, count in failures:
        click.echo(f"failed because {reason or 'unknown'}: {count}")


@outbox.command("drain")
@click.option("--follow", is_flag=True, help="Keep draining until stopped: an extra drain beside the scheduler's.")
def outbox_drain(follow: bool) -> None:
    """Send every due message now through the configured gateway."""
    from smsgw.messaging.drain import drain_once
    from smsgw.messaging.gateways import build_gateway

    settings = _settings()
    db = _database(settings)
    gateway = build_gateway(settings)
    lease = dt.timedelta(seconds=int(settings["OUTBOX_LEASE_SECONDS"]))
    if follow:
        _follow(db, gateway, lease)
        return
    sent = failed = retried = 0
    # An operator's drain tries a paused gateway at once (the setting may just have been fixed).
    probe = True
    while (stats := drain_once(db, gateway, lease=lease, probe=probe)).claimed:
        probe = False
        sent, failed, retried = sent + stats.sent, failed + stats.failed, retried + stats.retried
    click.echo(f"sent {sent}, failed {failed}, to retry {retried}")
    if stats.paused:
        raise click.ClickException(f"sending is paused: the gateway refuses every message ({stats.paused}); fix the setting and run this again")


def _follow(db: Database, gateway: Any, lease: dt.timedelta) -> None:
    """Drain until SIGTERM or Ctrl-C, finishing the request in flight first."""
    import signal
    import threading

    from smsgw.messaging.drain import drain_forever

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo("draining the outbox until stopped")
    drain_forever(db, gateway, lease=lease, stop=stop)
    click.echo("drain stopped")


@main.group()
def bulletins() -> None:
    """Price bulletins: the scheduler sends them at each market's hour; send one now here."""


@bulletins.command("send")
@click.argument("kind", type=click.Choice(["daily", "weekly"]))
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), help="Bulletin date (default: today).")
@click.option("--market", "markets", multiple=True, help="Market code; repeat for several (default: all).")
@click.option("--dry-run", is_flag=True, help="Count messages, segments and cost; queue nothing.")
def bulletins_send(kind: str, day: dt.datetime | None, markets: tuple[str, ...], dry_run: bool) -> None:
    """Compose KIND bulletins, print counts and estimated cost, then queue them."""
    import sqlalchemy as sa

    from smsgw.models import Market
    from smsgw.services.bulletins import Policy, estimated_cost, run_bulletin

    settings = _settings()
    db = _database(settings)
    policy = Policy.from_settings(settings)
    bulletin_day = day.date() if day else dt.date.today()
    with db.session() as session:
        query = sa.select(Market.code, Market.currency).order_by(Market.code)
        if markets:
            query = query.where(Market.code.in_(markets))
        chosen = session.execute(query).all()
    unknown = set(markets) - {code for code, _ in chosen}
    if unknown:
        raise click.ClickException(f"unknown market: {', '.join(sorted(unknown))} (see the catalog's market codes)")
    plans = [(code, currency, run_bulletin(db, kind, code, bulletin_day, policy, dry_run=True)) for code, currency in chosen]
    for code, currency, plan in plans:
        languages = ", ".join(f"{lang} {n}" for lang, n in sorted(plan.by_language.items())) or "-"
        click.echo(f"{code:<18} {plan.messages:>6} messages {plan.segments:>6} segments {plan.distinct_texts:>5} distinct texts  ~{estimated_cost(plan.segments, currency, settings)} {currency}  ({languages})")
    if dry_run:
        click.echo("dry run: nothing queued")
        return
    total = sum(plan.messages for _, _, plan in plans)
    with click.progressbar(length=max(total, 1), label="queueing") as bar:
        for code, _, _ in plans:
            report = run_bulletin(db, kind, code, bulletin_day, policy, progress=bar.update)
            if report.skipped_taken:
                click.echo(f"\n{code}: this bulletin was already sent for {bulletin_day}")
    click.echo("queued; the scheduler's drain sends them (or run: smsgw outbox drain)")


@main.command("orders-sweep")
def orders_sweep() -> None:
    """Close group orders past their deadline and queue reminders due in the next day."""
    from smsgw.scheduler import orders_job

    orders_job()
    click.echo("orders swept")
from smsgw import (
    cli_contacts,  # noqa: F401  (registers the contacts commands)
    cli_doctor,  # noqa: F401  (registers the doctor command)
    cli_prices,  # noqa: F401  (registers the prices commands)
    cli_report,  # noqa: F401  (registers the report commands)
    cli_users,  # noqa: F401  (registers the users commands)
)
