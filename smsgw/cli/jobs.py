"""What the scheduler does, run now: ``smsgw bulletins send`` and ``smsgw orders-sweep``."""
from __future__ import annotations

import datetime as dt

import click

from smsgw.cli import core


@click.group()
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

    settings = core.settings()
    db = core.database(settings)
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
    plans = [
        (code, currency, run_bulletin(db, kind, code, bulletin_day, policy, dry_run=True)) for code, currency in chosen
    ]
    for code, currency, plan in plans:
        languages = ", ".join(f"{lang} {n}" for lang, n in sorted(plan.by_language.items())) or "-"
        click.echo(
            f"{code:<18} {plan.messages:>6} messages {plan.segments:>6} segments"
            f" {plan.distinct_texts:>5} distinct texts"
            f"  ~{estimated_cost(plan.segments, currency, settings)} {currency}  ({languages})"
        )
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


@click.command("orders-sweep")
def orders_sweep() -> None:
    """Close group orders past their deadline and queue reminders due in the next day."""
    from smsgw.scheduler import orders_job

    orders_job()
    click.echo("orders swept")
