"""Import published price series from CSV: streamed, idempotent, checked before publication.

The formats (``wfp``, ``generic``) and how a line is read are in
:mod:`smsgw.services.price_files`; names are matched to the catalog by
:mod:`smsgw.services.catalog_matcher`.

The file is read twice, streaming: a first pass surveys its columns and names (so that
varieties map the same whatever the order of the rows, and a file that never says the
country of the markets it would create is refused whole before anything is written), then
rows are read with the csv module one at a time and inserted in batches with one
``INSERT ... ON CONFLICT DO NOTHING`` each. Each row gets a ``source_ref`` built from its
content (date, market, commodity, unit, kind, currency, the country where the currency does
not tell it, grade), so importing a file again adds nothing. Each batch goes through
:mod:`smsgw.services.price_checks` before insertion. Forecast rows are counted, not stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
import sqlalchemy.orm as so
from babel.numbers import list_currencies
from sqlalchemy.dialects import postgresql, sqlite

from smsgw.db import utcnow
from smsgw.models import PriceObservation
from smsgw.services.catalog_matcher import CatalogMatcher, MarketRef, UnitRef, currency_country
from smsgw.services.price_checks import Candidate, Decision, Policy, PriceChecker
from smsgw.services.price_files import (
    FORMATS,
    MAX_PER_BASE,
    MICRO,
    Forecast,
    ImportFileError,
    Row,
    RowError,
    Survey,
    cells,
    check_header,
    country_code,
    country_from_name,
    open_file,
    parse_row,
    skipped,
    source_ref,
    survey_file,
    unreadable,
)

BATCH_SIZE = 2000
KEEP_LINES = 1000  # line-level detail kept for the summary; beyond it only counts


@dataclass
class ImportSummary:
    """What an import did, for the operator: counts and the lines that need attention."""

    source: str
    rows_read: int = 0
    imported: int = 0
    approved: int = 0
    held: int = 0
    duplicates: int = 0
    changed_duplicates: int = 0
    rejected_count: int = 0
    # Rows flagged as forecasts: not observed prices, so neither stored nor rejected.
    forecasts: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    held_lines: list[tuple[int, str]] = field(default_factory=list)
    created: dict[str, list[str]] = field(default_factory=dict)
    saved: bool = True
    seconds: float = 0.0
    # The country the file's name gives (wfp_food_prices_sen.csv), when --country is not given.
    country: str = ""

    def reject(self, line: int, reason: str) -> None:
        """Record a rejected line and its reason."""
        self.rejected_count += 1
        self.rejected_reasons[reason] += 1
        if len(self.rejected) < KEEP_LINES:
            self.rejected.append((line, reason))


@dataclass(frozen=True)
class Prepared:
    """A row matched to the catalog, normalised, and keyed: ready to check and insert."""

    row: Row
    ref: str
    market: MarketRef
    commodity_id: int
    unit: UnitRef
    grade_id: int | None
    amount: decimal.Decimal
    per_base: decimal.Decimal
    # The key this row had before keys held a country (XOF rows imported then), or "".
    legacy: str = ""


class Importer:
    """One import run: parse, match, check and insert in batches."""

    def __init__(
        self,
        session: so.Session,
        fmt: str,
        *,
        source: str,
        create_missing: bool,
        atomic: bool,
        dry_run: bool,
        policy: Policy,
        country: str | None,
        batch_size: int,
        as_of: dt.date | None = None,
    ) -> None:
        self.session = session
        self.as_of = as_of
        self.fmt = fmt
        self.source = source
        self.atomic = atomic
        self.dry_run = dry_run
        self.policy = policy
        self.batch_size = batch_size
        self.create_missing = create_missing
        self.country = country or ""
        self.matcher: CatalogMatcher  # made by run(), once the file is surveyed
        self.checker = PriceChecker(session, policy)
        self.trusted = policy.trusts(source)
        self.summary = ImportSummary(source=source)
        self.currencies = list_currencies()  # ISO 4217 codes known to CLDR
        self.seen: set[str] = set()
        dialect = session.get_bind().dialect.name
        self.insert: Callable[[sa.Table], postgresql.Insert | sqlite.Insert] = (
            postgresql.insert if dialect == "postgresql" else sqlite.insert
        )

    def run(self, path: Path, progress: Callable[[int], None]) -> ImportSummary:
        """Import ``path``; commit per batch, or once (``atomic``), or never (``dry_run``)."""
        started = time.perf_counter()
        survey = survey_file(path, self.fmt)
        self.summary.country = "" if self.country else country_from_name(path)
        self.matcher = CatalogMatcher(
            self.session,
            create_missing=self.create_missing,
            country=self.country,
            file_country=self.summary.country,
            survey=survey,
        )
        missing = self.matcher.missing_country()
        if missing is not None:
            raise ImportFileError(f"line {missing[0]}: {missing[1]}")
        with open_file(path) as handle:
            reader = csv.reader(handle)
            try:
                check_header(next(reader, []), self.fmt, path)
                self._read(reader, survey, progress)
            except (UnicodeDecodeError, csv.Error) as error:
                # Only if the file changed since the survey. Batches before this line are
                # kept unless atomic; the current one is not.
                self.session.rollback()
                raise unreadable(error, reader.line_num + 1, path) from None
        summary = self.summary
        summary.created = self.matcher.created
        summary.saved = not (self.dry_run or (self.atomic and summary.rejected_count))
        if summary.saved:
            self.session.commit()
        else:
            # A dry run reports what it would have done; a failed atomic import did nothing.
            self.session.rollback()
            if not self.dry_run:
                summary.imported = summary.approved = summary.held = 0
                summary.held_lines = []
        summary.seconds = time.perf_counter() - started
        return summary

    def _read(self, reader: Any, survey: Survey, progress: Callable[[int], None]) -> None:
        batch: list[Prepared] = []
        last_line = 1
        for record in reader:
            line = reader.line_num
            if skipped(record):
                continue
            self.summary.rows_read += 1
            try:
                if len(record) < survey.width:
                    raise RowError(f"{len(record)} fields where the header has {survey.width}")
                prepared = self._prepare(parse_row(cells(record, survey.columns), line))
            except Forecast:
                self.summary.forecasts += 1
                continue
            except RowError as error:
                self.summary.reject(line, str(error))
                continue
            if prepared.ref in self.seen:
                self.summary.duplicates += 1
                continue
            self.seen.add(prepared.ref)
            batch.append(prepared)
            if len(batch) >= self.batch_size:
                self._flush(batch)
                batch = []
                progress(line - last_line)
                last_line = line
        if batch:
            self._flush(batch)
        progress(reader.line_num - last_line)

    def _prepare(self, row: Row) -> Prepared:
        if row.currency not in self.currencies:
            raise RowError(
                f"unknown currency {row.currency!r} (expected an ISO 4217 code such as KES)"
            )
        unit = self.matcher.unit(row.unit)
        market = self.matcher.market(row)
        if row.currency != market.currency:
            raise RowError(
                f"currency {row.currency} is not {market.name}'s currency {market.currency}"
            )
        commodity_id = self.matcher.commodity(row.commodity, unit)
        grade_id = self.matcher.grade(commodity_id, row.grade) if row.grade.strip() else None
        per_base = (row.amount / unit.factor).quantize(MICRO)
        if per_base <= 0 or per_base >= MAX_PER_BASE:
            raise RowError(f"price {row.amount} per {row.unit} is out of range per {unit.base}")
        # A currency of one country (KES) already names it: those keys stay as they always were.
        country = "" if currency_country(row.currency) else market.country
        return Prepared(
            row,
            source_ref(row, country),
            market,
            commodity_id,
            unit,
            grade_id,
            row.amount,
            per_base,
            source_ref(row) if country else "",
        )

    def _existing(self, batch: list[Prepared]) -> dict[str, tuple[decimal.Decimal, int]]:
        """Amount and market of this source's rows already stored, by ``source_ref``, for the batch."""
        # One range query per batch: a key holds its date, so every match lies in the
        # batch's date range; a long IN list of keys costs far more on PostgreSQL.
        days = [item.row.day for item in batch]
        rows = self.session.execute(
            sa.select(PriceObservation.source_ref, PriceObservation.amount, PriceObservation.market_id).where(
                PriceObservation.source == self.source,
                PriceObservation.observed_on.between(min(days), max(days)),
            )
        )
        wanted = {item.ref for item in batch} | {item.legacy for item in batch if item.legacy}
        return {ref: (amount, market_id) for ref, amount, market_id in rows if ref in wanted}

    def _flush(self, batch: list[Prepared]) -> None:
        existing = self._existing(batch)
        fresh = []
        for item in batch:
            stored = existing.get(item.ref)
            legacy = existing.get(item.legacy) if item.legacy else None
            if stored is None and legacy is not None and legacy[1] == item.market.id:
                stored = legacy  # the same row, imported before its key held the country
            if stored is not None:
                self.summary.duplicates += 1
                # A revised price for a row already imported is not applied: say so.
                self.summary.changed_duplicates += stored[0] != item.amount
            else:
                fresh.append(item)
        if not fresh or (self.atomic and self.summary.rejected_count):
            return  # an atomic import with a rejected row is rolled back anyway
        candidates = [self._candidate(item) for item in fresh]
        self.checker.prepare(candidates)
        now = utcnow()
        today = self.as_of or now.date()  # rows older than the price maximum age are history
        rows, decisions = [], {}
        for item, candidate in zip(fresh, candidates):
            decision = self.checker.decide(candidate, trusted=self.trusted, history_as_of=today)
            if not decision.held:
                self.checker.accept(candidate)
            decisions[item.ref] = (item.row.line, decision)
            rows.append(
                {
                    "commodity_id": item.commodity_id,
                    "market_id": item.market.id,
                    "grade_id": item.grade_id,
                    "observed_on": item.row.day,
                    "amount": item.amount,
                    "unit_id": item.unit.id,
                    "currency": item.market.currency,
                    "price_per_base": item.per_base,
                    "kind": item.row.kind,
                    "source": self.source,
                    "source_ref": item.ref,
                    "status": decision.status,
                    "status_reason": decision.reason,
                    "created_at": now,
                }
            )
        # A declarative model's __table__ is typed as any FromClause; here it is a Table.
        table = cast(sa.Table, PriceObservation.__table__)
        statement = (
            self.insert(table)
            .on_conflict_do_nothing(index_elements=["source", "source_ref"])
            .returning(table.c.source_ref)
        )
        inserted = self.session.execute(statement, rows).scalars().all()
        self._count(inserted, decisions)
        if not (self.atomic or self.dry_run):
            self.session.commit()

    def _count(self, inserted: Sequence[str], decisions: dict[str, tuple[int, Decision]]) -> None:
        self.summary.imported += len(inserted)
        # Rows another process inserted between our check and our insert are duplicates too.
        self.summary.duplicates += len(decisions) - len(inserted)
        for ref in inserted:
            line, decision = decisions[ref]
            if decision.held:
                self.summary.held += 1
                if len(self.summary.held_lines) < KEEP_LINES:
                    self.summary.held_lines.append((line, decision.reason))
            else:
                self.summary.approved += 1

    def _candidate(self, item: Prepared) -> Candidate:
        market = item.market
        return Candidate(
            market_id=market.id,
            commodity_id=item.commodity_id,
            kind=item.row.kind,
            base=item.unit.base,
            day=item.row.day,
            per_base=float(item.per_base),
            currency=market.currency,
            country=market.country,
            market_name=market.name,
        )


def default_source(fmt: str) -> str:
    """The source name an import of ``fmt`` records unless told otherwise."""
    return f"import:{fmt}"


def import_prices(
    session: so.Session,
    path: Path,
    fmt: str,
    *,
    source: str | None = None,
    create_missing: bool = False,
    atomic: bool = False,
    dry_run: bool = False,
    policy: Policy | None = None,
    country: str | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
    as_of: dt.date | None = None,
) -> ImportSummary:
    """Import the price file at ``path`` in format ``fmt`` ("wfp" or "generic").

    ``as_of`` (default today): rows older than their commodity's price maximum age on that
    day are history, whose outliers are flagged but not held. ``country`` (``--country``):
    the country of rows without a country column, as an ISO code or a name.
    """
    if fmt not in FORMATS:
        raise ImportFileError(f"unknown format {fmt!r} (use {' or '.join(FORMATS)})")
    source = (source or default_source(fmt)).strip()
    if not source or len(source) > 40:
        raise ImportFileError("--source must be 1 to 40 characters")
    try:
        country = country_code(country or "")
    except RowError as error:
        raise ImportFileError(f"--country: {error}") from None
    importer = Importer(
        session,
        fmt,
        source=source,
        create_missing=create_missing,
        atomic=atomic,
        dry_run=dry_run,
        policy=policy or Policy.from_settings(),
        country=country,
        batch_size=batch_size,
        as_of=as_of,
    )
    return importer.run(Path(path), progress or (lambda _lines: None))
