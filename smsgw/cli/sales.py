"""``smsgw import-sales``: farmers' sales from a baseline survey, for the before/after comparison.

Services are imported inside the command, as in every ``smsgw.cli`` module, so that ``smsgw --help``
and unrelated commands start without loading them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click

from smsgw.cli import core

PROGRESS_SECONDS = 2.0  # at most one progress line this often: a long file, not a flood


def _progress(path: Path) -> Callable[[int], None]:
    """A callback printing how much of ``path`` is read, now and then, on stderr."""
    size, last = max(path.stat().st_size, 1), [time.monotonic()]

    def shown(done: int) -> None:
        if time.monotonic() - last[0] >= PROGRESS_SECONDS:
            last[0] = time.monotonic()
            click.echo(f"progress: {min(100, done * 100 // size)}% of {path.name} read", err=True)

    return shown


@click.command("import-sales")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write rejected lines to this CSV (line,reason) instead of stderr.")
@click.option("--region", help="Two letters: the country of national numbers (0712...). Default SMSGW_DEFAULT_REGION.")
def import_sales(file: Path, rejects: Path | None, region: str | None) -> None:
    """Import farmers' past sales from FILE (a survey's CSV); importing it again adds nothing.

    \b
    A header row, then one sale per row; columns in any order, other columns ignored:
      phone       the farmer's number: +254712345678, or national in --region
      date        the day of the sale: 2025-03-14 or 14/03/2025 (up to 5 years back)
      commodity   commodity code, name or alias (maize, mahindi)
      quantity    how much, in unit (dot decimals)
      unit        catalog unit or alias (kg, bag90) or a measure (90 kg)
      price       price received per unit, above 0 (dot decimals)
      buyer_type  farm_gate_trader, market, group_order or processor (trader, group...)
      market      where the farmer sold, or the nearest market: code, name or alias
      currency    optional: the market's currency (KES)
      grade       optional: a grade code of the commodity
      ref         optional: the survey's own id of the sale, unique across imports

    \b
    Each bad line is rejected with its number and reason; the others go in, in batches.
    A number not yet known becomes a contact who is a survey respondent: consent
    unknown, no alerts, never sent anything until they use the service themselves.
    """
    from zoneinfo import ZoneInfo

    from smsgw.csv_safe import SafeWriter
    from smsgw.db import utcnow
    from smsgw.services import sale_import

    settings = core.settings()
    today = utcnow().astimezone(ZoneInfo(settings["SMSGW_TIMEZONE"])).date()
    db = core.database(settings)
    out = rejects.open("w", newline="", encoding="utf-8") if rejects else None
    try:
        if out is not None:
            # The reasons quote the file's cells: written as every CSV of the service is.
            writer = SafeWriter(out)
            writer.writerow(["line", "reason"])

            def reject(line: int, reason: str) -> None:
                writer.writerow([line, reason])
        else:

            def reject(line: int, reason: str) -> None:
                click.echo(f"line {line}: {reason}", err=True)

        with db.session() as session:
            result = sale_import.import_sales(
                session, file, today=today, region=(region or settings["SMSGW_DEFAULT_REGION"]).upper(),
                language=settings["SMSGW_DEFAULT_LANG"], reject=reject, progress=_progress(file),
            )
    except sale_import.SaleFileError as error:
        raise click.ClickException(str(error)) from None
    finally:
        db.dispose()
        if out is not None:
            out.close()
    where = f" (see {rejects})" if rejects and result.rejected + result.repeated else ""
    click.echo(f"{file.name}: {result.rows} rows; imported {result.imported}, already imported {result.already}, "
               f"repeated in the file {result.repeated}, rejected {result.rejected}{where}; "
               f"new contacts {result.new_contacts} (survey respondents, sent nothing); {result.seconds:.1f}s")
