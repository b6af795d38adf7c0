"""Import published price series from CSV: streamed, idempotent, checked before publication.

Two formats:

``wfp``
    The World Food Programme's market price export (HDX): columns ``date, admin1, admin2,
    market, latitude, longitude, category, commodity, unit, priceflag, pricetype, currency,
    price, usdprice``; a row of HXL tags (``#date,...``) after the header is skipped.

``generic``
    A header row, then one price per row. Columns in any order, names case-insensitive,
    other columns ignored:

    - ``date``: ISO date, e.g. 2024-03-15
    - ``market``: market code, name or alias (nakuru)
    - ``commodity``: commodity code, name or alias (maize)
    - ``unit``: a catalog unit code or alias (kg, 90kg, bag90, quintal) or a measure (13 kg, 500 ml)
    - ``price``: the price per that unit, a number above 0 (dot decimals, no separators)
    - ``currency``: ISO 4217 code, which must be the market's currency
    - ``kind``: wholesale, retail or farm-gate
    - ``grade`` (optional): a grade code of the commodity (G1)
    - ``country`` (optional): ISO 3166 code, used when ``create_missing`` makes a market

In both, blank rows and rows whose first cell starts with ``#`` (HXL tags) are skipped.
Matching: markets and commodities by code, name or alias, case-insensitive; a commodity
name with a variety in parentheses (``Maize (white)``) falls back to the plain name. Units
by code or alias, else as a weight or volume measure (``90 KG``, ``500 ML``) by factor;
counted units (``Unit``, ``Bunch``) are rejected. ``create_missing`` creates what is not
found and records the file's names as aliases.

Rows are read with the csv module one at a time and inserted in batches with one
``INSERT ... ON CONFLICT DO NOTHING`` each. Each row gets a ``source_ref`` built from its
content (date, market, commodity, unit, kind, currency, grade), so importing a file again
adds nothing. Each batch goes through :mod:`smsgw.services.price_checks` before insertion.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
import sqlalchemy.orm as so
from babel.core import get_global
from babel.numbers import list_currencies
from sqlalchemy.dialects import postgresql, sqlite

from smsgw.db import utcnow
from smsgw.models import (
    Commodity,
    CommodityAlias,
    Grade,
    Market,
    MarketAlias,
    PriceObservation,
    Unit,
    UnitAlias,
)
from smsgw.services.price_checks import Candidate, Decision, Policy, PriceChecker

FORMATS = ("wfp", "generic")
WFP_COLUMNS = ("date", "market", "commodity", "unit", "pricetype", "currency", "price")
GENERIC_COLUMNS = ("date", "market", "commodity", "unit", "price", "currency", "kind")
KINDS = {
    "wholesale": "wholesale",
    "retail": "retail",
    "farm-gate": "farm_gate",
    "farm_gate": "farm_gate",
    "farmgate": "farm_gate",
    "farm gate": "farm_gate",
}
BATCH_SIZE = 2000
KEEP_LINES = 1000  # line-level detail kept for the summary; beyond it only counts
CENT = decimal.Decimal("0.01")
MICRO = decimal.Decimal("0.000001")
MAX_AMOUNT = decimal.Decimal("1e12")  # Numeric(14, 2)
MAX_PER_BASE = decimal.Decimal("1e10")  # Numeric(16, 6)


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (missing, empty, wrong columns)."""


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
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    held_lines: list[tuple[int, str]] = field(default_factory=list)
    created: dict[str, list[str]] = field(default_factory=dict)
    saved: bool = True
    seconds: float = 0.0

    def reject(self, line: int, reason: str) -> None:
        """Record a rejected line and its reason."""
        self.rejected_count += 1
        self.rejected_reasons[reason] += 1
        if len(self.rejected) < KEEP_LINES:
            self.rejected.append((line, reason))


@dataclass(frozen=True)
class Row:
    """One parsed line of a file, before catalog matching."""

    line: int
    day: dt.date
    market: str
    commodity: str
    unit: str
    amount: decimal.Decimal
    currency: str
    kind: str
    grade: str = ""
    country: str = ""
    region: str = ""
    latitude: decimal.Decimal | None = None
    longitude: decimal.Decimal | None = None


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


class RowError(ValueError):
    """One line cannot be imported; the message says why."""


def norm(text: str) -> str:
    """Lowercase with single spaces: how names, aliases and units are compared."""
    return " ".join(text.lower().split())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", norm(text)).strip("-")[:40] or "item"


PARENTHESES = re.compile(r"\([^)]*\)")
MEASURE = re.compile(r"^(\d+(?:\.\d+)?)?(kg|g|t|l|ml)$")
# A measure's base unit and how many base units one of it holds.
MEASURES = {
    "kg": ("kg", "1"),
    "g": ("kg", "0.001"),
    "t": ("kg", "1000"),
    "l": ("l", "1"),
    "ml": ("l", "0.001"),
}


@dataclass(frozen=True)
class MarketRef:
    """What a row needs of a market, so rows never touch (or reload) ORM objects."""

    id: int
    name: str
    currency: str
    country: str


@dataclass(frozen=True)
class UnitRef:
    """A unit's id, base and factor."""

    id: int
    base: str
    factor: decimal.Decimal


def _country_zones() -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    """Time zones per country, and the countries using each current currency (Babel's CLDR)."""
    users: dict[str, set[str]] = {}
    for territory, entries in get_global("territory_currencies").items():
        for code, _start, end, tender in entries:
            if end is None and tender:
                users.setdefault(code, set()).add(territory)
    return get_global("territory_zones"), users


class CatalogMatcher:
    """Matches a file's names to the catalog by code, name and alias; creates on request."""

    def __init__(self, session: so.Session, *, create_missing: bool, country: str | None) -> None:
        self.session = session
        self.create_missing = create_missing
        self.country = (country or "").upper()
        self.created: dict[str, list[str]] = {"markets": [], "commodities": [], "units": []}
        self.units: dict[str, UnitRef] = {}
        self.measures: dict[tuple[str, decimal.Decimal], UnitRef] = {}
        for unit in session.scalars(
            sa.select(Unit).options(so.selectinload(Unit.aliases)).order_by(Unit.id)
        ):
            ref = UnitRef(unit.id, unit.base, unit.factor)
            self.measures.setdefault((unit.base, unit.factor), ref)
            for word in [unit.code, *(alias.alias for alias in unit.aliases)]:
                self.units.setdefault(norm(word).replace(" ", ""), ref)
        self.markets: dict[str, MarketRef] = {}
        for market in session.scalars(
            sa.select(Market).options(so.selectinload(Market.aliases)).order_by(Market.id)
        ):
            ref = MarketRef(market.id, market.name, market.currency, market.country)
            for word in [market.code, market.name, *(alias.alias for alias in market.aliases)]:
                self.markets.setdefault(norm(word), ref)
        self.commodities: dict[str, int] = {}
        for commodity in session.scalars(
            sa.select(Commodity).options(so.selectinload(Commodity.aliases)).order_by(Commodity.id)
        ):
            words = [
                commodity.code,
                *commodity.names.values(),
                *(alias.alias for alias in commodity.aliases),
            ]
            for word in words:
                self.commodities.setdefault(norm(word), commodity.id)
        self.codes = {
            Market: set(session.scalars(sa.select(Market.code))),
            Commodity: set(session.scalars(sa.select(Commodity.code))),
            Unit: set(session.scalars(sa.select(Unit.code))),
        }
        self.aliases = {
            MarketAlias: set(session.scalars(sa.select(MarketAlias.alias))),
            CommodityAlias: set(session.scalars(sa.select(CommodityAlias.alias))),
            UnitAlias: set(session.scalars(sa.select(UnitAlias.alias))),
        }
        self.grades: dict[int, dict[str, int]] = {}

    def _code(self, model: type, name: str) -> str:
        base, number = _slug(name), 1
        code = base
        while code in self.codes[model]:
            number += 1
            code = f"{base[:36]}-{number}"
        self.codes[model].add(code)
        return code

    def _alias(self, model: type, word: str, **owner: object) -> None:
        # Aliases are unique across the catalog: never take one another row already uses.
        if word and len(word) <= 40 and word not in self.aliases[model]:
            self.aliases[model].add(word)
            self.session.add(model(alias=word, **owner))

    def unit(self, raw: str) -> UnitRef:
        """The catalog unit for ``raw`` (an alias, or a measure such as ``90 KG``)."""
        compact = norm(raw).replace(" ", "")
        found = self.units.get(compact)
        if found is not None:
            return found
        if not compact:
            raise RowError("the unit is empty")
        measure = MEASURE.match(compact)
        if measure is None:
            raise RowError(f"unit {raw!r} is not a weight or volume, and no catalog unit matches")
        base, scale = MEASURES[measure[2]]
        factor = (decimal.Decimal(measure[1] or 1) * decimal.Decimal(scale)).normalize()
        found = self.measures.get((base, factor))
        if found is None:
            if not self.create_missing:
                raise RowError(
                    f"unit {raw!r} ({factor:f} {base}) is not in the catalog (--create-missing adds it)"
                )
            unit = Unit(
                code=self._code(Unit, compact), base=base, factor=factor, names={"en": compact[:12]}
            )
            self.session.add(unit)
            self.session.flush()
            self._alias(UnitAlias, compact, unit_id=unit.id)
            found = self.measures[(base, factor)] = UnitRef(unit.id, base, factor)
            self.created["units"].append(unit.code)
        self.units[compact] = found
        return found

    def market(self, row: Row) -> MarketRef:
        """The market ``row`` names, created from the row's details when asked."""
        key = norm(row.market)
        found = self.markets.get(key) or self.markets.get(key.replace(" ", "-"))
        if found is not None:
            return found
        if not key:
            raise RowError("the market is empty")
        if not self.create_missing:
            raise RowError(f"unknown market {row.market!r}")
        zones, users = _country_zones()
        country = (row.country or self.country).upper()
        if not country and len(users.get(row.currency, ())) == 1:
            country = next(iter(users[row.currency]))
        if country not in zones:
            raise RowError(
                f"cannot create market {row.market!r}: no known country (give a country column or --country)"
            )
        market = Market(
            code=self._code(Market, row.market),
            name=row.market[:80],
            short_name=row.market[:20].strip(),
            country=country,
            region=row.region[:80],
            timezone=zones[country][0],
            currency=row.currency,
            latitude=row.latitude,
            longitude=row.longitude,
        )
        self.session.add(market)
        self.session.flush()
        self._alias(MarketAlias, key, market_id=market.id)
        found = self.markets[key] = MarketRef(
            market.id, market.name, market.currency, market.country
        )
        self.created["markets"].append(market.name)
        return found

    def commodity(self, raw: str, unit: UnitRef) -> int:
        """The commodity id for ``raw``; ``Maize (white)`` falls back to ``maize``."""
        key = norm(raw)
        found = self.commodities.get(key) or self.commodities.get(key.replace(" ", "-"))
        if found is not None:
            return found
        if not key:
            raise RowError("the commodity is empty")
        # WFP names a variety in parentheses: the catalog prices the crop.
        plain = norm(PARENTHESES.sub(" ", key))
        found = self.commodities.get(plain) or self.commodities.get(plain.replace(" ", "-"))
        if found is None and not self.create_missing:
            raise RowError(f"unknown commodity {raw!r}")
        if found is None:
            commodity = Commodity(
                code=self._code(Commodity, raw),
                kind="produce",
                default_unit_id=unit.id,
                names={"en": raw.strip()[:60]},
                short_names={"en": raw.strip()[:20]},
            )
            self.session.add(commodity)
            self.session.flush()
            found = commodity.id
            self.created["commodities"].append(raw.strip())
        if self.create_missing:
            self._alias(CommodityAlias, key, commodity_id=found, lang="en")
        self.commodities[key] = found
        return found

    def grade(self, commodity_id: int, raw: str) -> int:
        """The id of the commodity's public grade coded ``raw``."""
        if commodity_id not in self.grades:
            rows = self.session.execute(
                sa.select(Grade.code, Grade.id).where(
                    Grade.commodity_id == commodity_id, Grade.buyer_id.is_(None)
                )
            )
            self.grades[commodity_id] = {norm(code): grade_id for code, grade_id in rows}
        found = self.grades[commodity_id].get(norm(raw))
        if found is None:
            raise RowError(f"unknown grade {raw!r} for this commodity")
        return found


def storable(
    amount: decimal.Decimal, factor: decimal.Decimal
) -> tuple[decimal.Decimal, decimal.Decimal] | None:
    """``amount`` in cents and per base unit, or None when the price columns cannot hold it."""
    # Compared before rounding: quantize fails on numbers wider than the decimal context.
    if not amount.is_finite() or not 0 < amount < MAX_AMOUNT:
        return None
    rounded = amount.quantize(CENT)
    per_base = (rounded / factor).quantize(MICRO)
    if rounded <= 0 or not 0 < per_base < MAX_PER_BASE:
        return None
    return rounded, per_base


def _date(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise RowError(f"bad date {text.strip()!r} (expected YYYY-MM-DD)") from None
    if day > dt.date.today() + dt.timedelta(days=1):
        raise RowError(f"date {day} is in the future")
    return day


def _price(text: str) -> decimal.Decimal:
    try:
        value = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        raise RowError(f"price {text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise RowError(f"price {text.strip()!r} is not a number")
    if value <= 0:
        raise RowError(f"price {text.strip()} is not above 0")
    amount = value.quantize(CENT)
    if amount <= 0:
        raise RowError(f"price {text.strip()} rounds to 0")
    if amount >= MAX_AMOUNT:
        raise RowError(f"price {text.strip()} is too large")
    return amount


def _kind(text: str) -> str:
    kind = KINDS.get(norm(text))
    if kind is None:
        raise RowError(f"unknown kind {text.strip()!r} (wholesale, retail or farm-gate)")
    return kind


def _coordinate(text: str) -> decimal.Decimal | None:
    try:
        value = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        return None
    return value.quantize(MICRO) if value.is_finite() and abs(value) <= 180 else None


def _parse(cell: Callable[[str], str], line: int) -> Row:
    """A row of either format: a column a format lacks reads as empty."""
    return Row(
        line=line,
        day=_date(cell("date")),
        market=cell("market"),
        commodity=cell("commodity"),
        unit=cell("unit"),
        amount=_price(cell("price")),
        currency=cell("currency").upper(),
        kind=_kind(cell("kind")),
        grade=cell("grade"),
        country=cell("country").upper(),
        region=cell("admin1"),
        latitude=_coordinate(cell("latitude")),
        longitude=_coordinate(cell("longitude")),
    )


def _source_ref(row: Row) -> str:
    """A stable key of the row's identity (not its price): the same row imported twice collides."""
    parts = [
        row.day.isoformat(),
        norm(row.market),
        norm(row.commodity),
        norm(row.unit),
        row.kind,
        row.currency,
    ]
    if row.grade.strip():
        parts.append(norm(row.grade))
    key = "|".join(parts)
    if len(key) <= 120:
        return key
    # Too long for the column: keep a readable start and make it unique with a digest.
    return f"{key[:95]}#{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _open(path: Path) -> TextIO:
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None


def _check_header(names: list[str], fmt: str, path: Path) -> list[str]:
    header = [name.strip().lower() for name in names]
    if not header:
        raise ImportFileError(f"{path.name} is empty")
    required = WFP_COLUMNS if fmt == "wfp" else GENERIC_COLUMNS
    missing = [name for name in required if name not in header]
    if missing:
        raise ImportFileError(
            f"line 1: missing column(s) {', '.join(missing)};"
            f" the {fmt} format needs {', '.join(required)}"
        )
    return header


def check_file(path: Path, fmt: str) -> int:
    """Check the file opens and has the format's columns; return its lines after the header."""
    with _open(path) as handle:
        try:
            _check_header(next(csv.reader(handle), []), fmt, path)
        except (UnicodeDecodeError, csv.Error):
            raise ImportFileError(f"line 1: {path.name} is not UTF-8 CSV text") from None
    with path.open("rb") as raw:
        # Counting lines streams the file: it is never held in memory.
        return max(sum(1 for _ in raw) - 1, 0)


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
    ) -> None:
        self.session = session
        self.fmt = fmt
        self.source = source
        self.atomic = atomic
        self.dry_run = dry_run
        self.policy = policy
        self.batch_size = batch_size
        self.matcher = CatalogMatcher(session, create_missing=create_missing, country=country)
        self.checker = PriceChecker(session, policy)
        self.trusted = policy.trusts(source)
        self.summary = ImportSummary(source=source)
        self.currencies = list_currencies()  # ISO 4217 codes known to CLDR
        self.seen: set[str] = set()
        dialect = session.get_bind().dialect.name
        self.insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def run(self, path: Path, progress: Callable[[int], None]) -> ImportSummary:
        """Import ``path``; commit per batch, or once (``atomic``), or never (``dry_run``)."""
        started = time.perf_counter()
        with _open(path) as handle:
            reader = csv.reader(handle)
            try:
                header = _check_header(next(reader, []), self.fmt, path)
                self._read(reader, header, progress)
            except (UnicodeDecodeError, csv.Error) as exc:
                # Batches before this line are kept unless atomic; the current one is not.
                self.session.rollback()
                reason = (
                    "is not UTF-8 text"
                    if isinstance(exc, UnicodeDecodeError)
                    else f"is not CSV ({exc})"
                )
                raise ImportFileError(f"line {reader.line_num + 1}: {path.name} {reason}") from None
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

    def _read(self, reader: Any, header: list[str], progress: Callable[[int], None]) -> None:
        columns = {name: position for position, name in reversed(list(enumerate(header)))}
        if self.fmt == "wfp":
            columns["kind"] = columns["pricetype"]  # and WFP files have no grade or country
            columns.pop("grade", None)
            columns.pop("country", None)
        batch: list[Prepared] = []
        last_line = 1
        for record in reader:
            line = reader.line_num
            if not any(value.strip() for value in record) or record[0].lstrip().startswith("#"):
                continue  # blank lines and the HXL tag row carry no price
            self.summary.rows_read += 1

            def cell(name: str, record: list[str] = record) -> str:
                position = columns.get(name)
                return (
                    record[position].strip()
                    if position is not None and position < len(record)
                    else ""
                )

            try:
                if len(record) < len(header):
                    raise RowError(f"{len(record)} fields where the header has {len(header)}")
                prepared = self._prepare(_parse(cell, line))
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
        return Prepared(
            row, _source_ref(row), market, commodity_id, unit, grade_id, row.amount, per_base
        )

    def _existing(self, batch: list[Prepared]) -> dict[str, decimal.Decimal]:
        """Amounts of this source's rows already stored, by ``source_ref``, for the batch."""
        # One range query per batch: a key holds its date, so every match lies in the
        # batch's date range; a long IN list of keys costs far more on PostgreSQL.
        days = [item.row.day for item in batch]
        rows = self.session.execute(
            sa.select(PriceObservation.source_ref, PriceObservation.amount).where(
                PriceObservation.source == self.source,
                PriceObservation.observed_on.between(min(days), max(days)),
            )
        )
        wanted = {item.ref for item in batch}
        return {ref: amount for ref, amount in rows if ref in wanted}

    def _flush(self, batch: list[Prepared]) -> None:
        existing = self._existing(batch)
        fresh = []
        for item in batch:
            if item.ref in existing:
                self.summary.duplicates += 1
                # A revised price for a row already imported is not applied: say so.
                self.summary.changed_duplicates += existing[item.ref] != item.amount
            else:
                fresh.append(item)
        if not fresh or (self.atomic and self.summary.rejected_count):
            return  # an atomic import with a rejected row is rolled back anyway
        candidates = [self._candidate(item) for item in fresh]
        self.checker.prepare(candidates)
        now = utcnow()
        rows, decisions = [], {}
        for item, candidate in zip(fresh, candidates):
            decision = self.checker.decide(candidate, trusted=self.trusted)
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
        table = PriceObservation.__table__
        statement = (
            self.insert(table)
            .on_conflict_do_nothing(index_elements=["source", "source_ref"])
            .returning(table.c.source_ref)
        )
        inserted = self.session.execute(statement, rows).scalars().all()
        self._count(inserted, decisions)
        if not (self.atomic or self.dry_run):
            self.session.commit()

    def _count(self, inserted: list[str], decisions: dict[str, tuple[int, Decision]]) -> None:
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
) -> ImportSummary:
    """Import the price file at ``path`` in format ``fmt`` ("wfp" or "generic")."""
    if fmt not in FORMATS:
        raise ImportFileError(f"unknown format {fmt!r} (use {' or '.join(FORMATS)})")
    source = (source or default_source(fmt)).strip()
    if not source or len(source) > 40:
        raise ImportFileError("--source must be 1 to 40 characters")
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
    )
    return importer.run(Path(path), progress or (lambda _lines: None))
