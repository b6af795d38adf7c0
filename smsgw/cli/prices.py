"""``smsgw import-prices`` and ``smsgw prices ...``: price files in, and the review queue.

Services are imported inside each command, as in every ``smsgw.cli`` module, so that ``smsgw --help``
and unrelated commands start without loading them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from smsgw.cli import core
from smsgw.db import Database

if TYPE_CHECKING:
    from smsgw.services.price_import import ImportSummary

SHOWN_LINES = 20


def _database() -> tuple[Database, dict[str, Any]]:
    settings = core.settings()
    return core.database(settings), settings


def _print_summary(summary: ImportSummary, dry_run: bool) -> None:
    click.echo(f"source {summary.source}: {summary.rows_read} rows read in {summary.seconds:.1f}s")
    if summary.country:
        click.echo(f"  country {summary.country}, from the file's name, where the currency does not tell it")
    verb = "would import" if dry_run else "imported"
    click.echo(
        f"  {verb} {summary.imported}: {summary.approved} approved, {summary.held} held for review"
    )
    changed = summary.changed_duplicates
    note = f" ({changed} with a different price, not applied)" if changed else ""
    click.echo(f"  duplicates {summary.duplicates}{note}")
    if summary.forecasts:
        click.echo(f"  forecasts {summary.forecasts} (not observed prices: not imported)")
    click.echo(f"  rejected {summary.rejected_count}")
    for line, reason in summary.rejected[:SHOWN_LINES]:
        click.echo(f"    line {line}: {reason}")
    if summary.rejected_count > SHOWN_LINES:
        click.echo(f"    ... and {summary.rejected_count - SHOWN_LINES} more; by reason:")
        for reason, count in summary.rejected_reasons.most_common(10):
            click.echo(f"    {count:>7}  {reason}")
    if summary.held_lines:
        click.echo(f"  held (first {min(SHOWN_LINES, summary.held)} of {summary.held}):")
        for line, reason in summary.held_lines[:SHOWN_LINES]:
            click.echo(f"    line {line}: {reason}")
    for kind, names in summary.created.items():
        if names:
            verb = "would create" if dry_run else "created"
            click.echo(f"  {verb} {len(names)} {kind}: {', '.join(names)}")


@click.command("import-prices")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["wfp", "generic"]),
    required=True,
    help="wfp: the WFP/HDX market price export; generic: the columns described above.",
)
@click.option("--dry-run", is_flag=True, help="Check and count everything, save nothing.")
@click.option(
    "--create-missing",
    is_flag=True,
    help="Create unknown markets, commodities and weight or volume units.",
)
@click.option(
    "--atomic",
    is_flag=True,
    help="All or nothing: any rejected row leaves the database as it was.",
)
@click.option("--source", help="Source name recorded on each price (default import:FORMAT).")
@click.option(
    "--country",
    help="The country of rows without a country column (SN, SEN or a name): markets are matched and made "
    "in it. Default: the currency's, when one country uses it, else the file's name (wfp_food_prices_sen.csv).",
)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Judge rows as of this day (default today): outliers older than the price maximum age "
    "are history, flagged but not held.",
)
def import_prices(
    file: Path,
    fmt: str,
    dry_run: bool,
    create_missing: bool,
    atomic: bool,
    source: str | None,
    country: str | None,
    as_of: dt.datetime | None,
) -> None:
    """Import market prices from FILE; importing the same file again adds nothing.

    \b
    Each price is stored as given and per base unit (kg, l), checked against the
    market's history and other markets that week, then approved (trusted source, in
    range) or held for review (smsgw prices pending). Rejected lines are listed.
    Forecast rows (priceflag or pricetype "forecast") are counted, not imported.

    \b
    generic format: a header row, then one price per row; other columns are ignored.
      date       ISO date (2024-03-15)
      market     market code, name or alias (nakuru)
      commodity  commodity code, name or alias (maize)
      unit       catalog unit or alias (kg, 90kg, bag90, quintal) or a measure (13 kg)
      price      price per that unit, above 0 (dot decimals)
      currency   ISO 4217 code, the market's currency (KES)
      kind       wholesale, retail or farm-gate
      grade      optional grade code (G1)
      country    optional: the market's country (SN, SEN or a name); also
                 countryiso3, adm0_name, or the column HXL tags #country
    """
    from smsgw.services import price_files, price_import
    from smsgw.services.price_checks import Policy

    try:
        total = price_files.check_file(file, fmt)
    except price_files.ImportFileError as error:
        raise click.ClickException(str(error)) from None
    db, settings = _database()
    try:
        with (
            db.session() as session,
            click.progressbar(length=total, label="importing", file=sys.stderr) as bar,
        ):
            summary = price_import.import_prices(
                session,
                file,
                fmt,
                source=source,
                create_missing=create_missing,
                atomic=atomic,
                dry_run=dry_run,
                policy=Policy.from_settings(settings),
                country=country,
                progress=bar.update,
                as_of=as_of.date() if as_of else None,
            )
    except price_files.ImportFileError as error:
        raise click.ClickException(str(error)) from None
    finally:
        db.dispose()
    _print_summary(summary, dry_run)
    if dry_run:
        click.echo("dry run: nothing saved")
    elif not summary.saved:
        raise click.ClickException(
            f"--atomic: {summary.rejected_count} rows rejected, nothing saved"
        )
    elif summary.held:
        click.echo(f"review held prices: smsgw prices pending --source {summary.source}")


@click.group()
def prices() -> None:
    """Review prices held by the anomaly check: list, approve, reject, correct."""


@prices.command("pending")
@click.option("--source", help="Only prices from this source (e.g. sms, import:wfp).")
@click.option("--limit", default=30, show_default=True, help="How many to show.")
def prices_pending(source: str | None, limit: int) -> None:
    """List held prices, oldest first, with the reason and the market's recent prices."""
    from smsgw.services import price_review

    db, _ = _database()
    with db.session() as session:
        total = price_review.count_pending(session, source)
        for item in price_review.list_pending(session, source, limit):
            row = item.observation
            base = row.unit.base
            recent = ", ".join(f"{day:%d %b %Y} {value:,.2f}" for day, value in item.recent)
            click.echo(
                f"#{row.id} {row.observed_on} {row.market.name} {row.commodity.name('en')}"
                f" {row.kind} {row.currency} {row.amount:,} per {row.unit.code}"
                f" ({row.price_per_base:,.2f}/{base}) [{row.source}]"
            )
            click.echo(f"    held: {row.status_reason or 'no reason recorded'}")
            click.echo(f"    recent approved per {base}: {recent or 'none'}")
    click.echo(f"{total} held" + (f" from {source}" if source else ""))


def _review(action: Any, *args: Any) -> None:
    """Run one review action in its own transaction; its errors become one clear line."""
    from smsgw.services.price_review import ReviewError

    db, _ = _database()
    try:
        with db.session() as session:
            action(session, *args)
    except ReviewError as error:
        raise click.ClickException(str(error)) from None
    finally:
        db.dispose()


@prices.command("approve")
@click.argument("observation_id", metavar="ID", type=int, required=False)
@click.option("--all", "every", is_flag=True, help="Approve every held price (of --source).")
@click.option("--source", help="With --all: only prices from this source.")
def prices_approve(observation_id: int | None, every: bool, source: str | None) -> None:
    """Publish held price ID, or all held prices with --all [--source S]."""
    from smsgw.services import price_review

    if (observation_id is None) != every:
        raise click.ClickException("give a price ID or --all, not both")
    if source and not every:
        raise click.ClickException("--source only goes with --all")
    if every:
        counted: list[int] = []
        _review(lambda session: counted.append(price_review.approve_all(session, source)))
        click.echo(f"approved {counted[0]} prices" + (f" from {source}" if source else ""))
    else:
        _review(price_review.approve, observation_id)
        click.echo(f"approved price {observation_id}")


@prices.command("reject")
@click.argument("observation_id", metavar="ID", type=int)
@click.option("--reason", required=True, help="Why: kept with the price and in the audit log.")
def prices_reject(observation_id: int, reason: str) -> None:
    """Refuse held price ID (or withdraw a published one) with a reason."""
    from smsgw.services import price_review

    _review(price_review.reject, observation_id, reason)
    click.echo(f"rejected price {observation_id}")


@prices.command("correct")
@click.argument("observation_id", metavar="ID", type=int)
@click.argument("amount")
def prices_correct(observation_id: int, amount: str) -> None:
    """Set price ID to AMOUNT (same unit and currency) and publish it."""
    from smsgw.services import price_review

    try:
        value = decimal.Decimal(amount)
    except decimal.InvalidOperation:
        raise click.ClickException(f"AMOUNT must be a number, got {amount!r}") from None
    if not value.is_finite():
        raise click.ClickException(f"AMOUNT must be a number, got {amount!r}")
    _review(price_review.correct, observation_id, value)
    click.echo(f"corrected and approved price {observation_id}")


@prices.command("reporters")
def prices_reporters() -> None:
    """Each price reporter's record: approved, rejected and pending reports."""
    from smsgw.services import price_review

    db, _ = _database()
    with db.session() as session:
        records = price_review.reporter_records(session)
    for record in records:
        click.echo(
            f"{record.phone:<16} {record.name:<24} approved {record.approved:>5}"
            f"  rejected {record.rejected:>5}  pending {record.pending:>5}"
        )
    if not records:
        click.echo("no price reporters")
