"""``smsgw rollout``: randomised phase-in of villages or producer groups, wave by wave."""
from __future__ import annotations

import datetime as dt
import json

import click

from smsgw.cli import core
from smsgw.models import AuditEntry


@click.group()
def rollout() -> None:
    """Randomised phase-in: units drawn into waves that start on set dates."""


@rollout.command("create")
@click.option("--unit", type=click.Choice(["village", "group"]), default="village", show_default=True,
              help="What is randomised: villages (a farmer's, else their group's) or producer groups.")
@click.option("--waves", type=int, required=True, help="How many waves (2 or more).")
@click.option("--start", "first_start", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="The first wave's start date (YYYY-MM-DD).")
@click.option("--every", "every_days", type=int, default=30, show_default=True, help="Days between waves.")
@click.option("--seed", type=int, help="The draw's seed (recorded; a random one when left out).")
@click.option("--only", "units", multiple=True, help="A unit to include (repeat); default: every one known.")
@click.argument("name")
def create(name: str, unit: str, waves: int, first_start: dt.datetime, every_days: int, seed: int | None,
           units: tuple[str, ...]) -> None:
    """Draw the rollout NAME and store it (it is never redrawn)."""
    from smsgw.services.rollouts import RolloutError, describe
    from smsgw.services.rollouts import create as create_rollout

    settings = core.settings()
    with core.database(settings).session() as session:
        try:
            made = create_rollout(session, name, unit, waves, first_start.date(), every_days, seed=seed,
                                  units=list(units) or None, created_by="cli")
        except RolloutError as error:
            raise click.ClickException(str(error)) from None
        shown = describe(session, made.name)
        session.add(AuditEntry(actor="cli", action="create", entity="rollout", entity_id=str(made.id), after=shown))
    _print(shown)


@rollout.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.argument("name")
def show(name: str, as_json: bool) -> None:
    """Show the rollout NAME: seed, waves, their dates, units and farmers enrolled."""
    from smsgw.services.rollouts import RolloutError, describe

    with core.database(core.settings()).session() as session:
        try:
            shown = describe(session, name)
        except RolloutError as error:
            raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(shown, indent=2))
    else:
        _print(shown)


@rollout.command("list")
def list_rollouts() -> None:
    """The rollouts' names, oldest first."""
    from smsgw.services.rollouts import names

    with core.database(core.settings()).session() as session:
        found = names(session)
    click.echo("\n".join(found) if found else "no rollouts yet (smsgw rollout create --help)")


@rollout.command("enrol-due")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), help="The day to act as of (default: today).")
def enrol_due(today: dt.datetime | None) -> None:
    """Enrol the farmers of every wave that has started (the scheduler does this daily)."""
    from zoneinfo import ZoneInfo

    from smsgw.db import utcnow
    from smsgw.services.rollouts import enrol_due as run

    settings = core.settings()
    zone = settings["SMSGW_TIMEZONE"]
    day = utcnow().astimezone(ZoneInfo(zone)).date()
    if today is not None and today.date() > day:
        raise click.ClickException(f"--today {today:%Y-%m-%d} is in the future: waves enrol on their day")
    day = today.date() if today else day
    with core.database(settings).session() as session:
        done = run(session, day)
    for item in done:
        click.echo(f"{item.rollout} wave {item.wave} (from {item.starts_on}): {item.enrolled} farmer(s) enrolled")
    if not done:
        click.echo("nothing to enrol")


def _print(shown: dict) -> None:
    click.echo(f"rollout {shown['name']}: {shown['unit']}s, seed {shown['seed']}")
    for wave in shown["waves"]:
        state = f"{wave['enrolled']} enrolled" if wave["started"] else "waiting"
        click.echo(f"  wave {wave['wave']} from {wave['starts_on']} ({state}): {', '.join(wave['units'])}")
