"""``smsgw outbox`` and ``smsgw outbox drain [--follow]``: what waits to be sent, and send it."""
from __future__ import annotations

import datetime as dt
from typing import Any

import click

from smsgw.cli import core
from smsgw.db import Database


@click.group(invoke_without_command=True)
@click.pass_context
def outbox(ctx: click.Context) -> None:
    """Show the outbox: messages by state (``smsgw outbox drain`` sends due ones now)."""
    if ctx.invoked_subcommand is not None:
        return
    import sqlalchemy as sa

    from smsgw.models import OutboundMessage

    db = core.database(core.settings())
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

    settings = core.settings()
    db = core.database(settings)
    gateway = build_gateway(settings)
    lease = dt.timedelta(seconds=int(settings["OUTBOX_LEASE_SECONDS"]))
    if follow:
        _follow(db, gateway, lease)
        return
    sent = failed = retried = lost = 0
    # An operator's drain tries a paused gateway at once (the setting may just have been fixed).
    probe = True
    while (stats := drain_once(db, gateway, lease=lease, probe=probe)).claimed:
        probe = False
        sent, failed, retried = sent + stats.sent, failed + stats.failed, retried + stats.retried
        lost += stats.lost
    taken = f", taken over by another drain {lost}" if lost else ""
    click.echo(f"sent {sent}, failed {failed}, to retry {retried}{taken}")
    if stats.paused:
        raise click.ClickException(
            f"sending is paused: the gateway refuses every message ({stats.paused}); fix the setting and run this again"
        )


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
