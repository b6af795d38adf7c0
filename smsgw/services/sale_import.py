"""Baseline sales from a survey (``smsgw import-sales FILE``): streamed, checked line by line, idempotent.

The file is CSV (comma or semicolon), UTF-8, with a header row. Columns in any order, names
case-insensitive, other columns ignored (``COLUMNS``): ``phone``, ``date`` (2025-03-14 or
14/03/2025), ``commodity``, ``quantity``, ``unit``, ``price`` (received per ``unit``),
``buyer_type``, ``market``; optional ``currency`` (the market's), ``grade`` and ``ref``.

Rows are read one at a time and stored in batches (one commit each), as sale reports with
channel ``import``. A row's ``source_ref`` is ``import:ref:<ref>`` when the file gives the
survey's own id of the sale, else ``import:<hash>`` of the row as matched to the catalog, so
that importing a file again adds nothing. A bad line is rejected with its reason and the
others go in. A phone not yet known becomes a contact with consent ``unknown``: a survey
respondent, subscribed to nothing and sent nothing, who joins the service only by using it.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
import itertools
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql, sqlite

from smsgw.db import utcnow
from smsgw.models import Contact, Market, MarketAlias, SaleReport
from smsgw.phones import InvalidPhone, normalize_phone
from smsgw.services import catalog, price_files, sales
from smsgw.services.catalog_matcher import CatalogMatcher, UnitRef
from smsgw.services.price_files import RowError

BATCH_SIZE = 500
COLUMNS = ("phone", "date", "commodity", "quantity", "unit", "price", "buyer_type", "market")
OPTIONAL = ("currency", "grade", "ref")
MAX_REF = 100  # source_ref holds 120 characters, "import:ref:" included
# What surveys write for the four kinds of buyer the analytics tell apart.
BUYER_WORDS = {
    "farm gate trader": "farm_gate_trader", "farm gate": "farm_gate_trader", "farmgate": "farm_gate_trader",
    "trader": "farm_gate_trader", "middleman": "farm_gate_trader", "broker": "farm_gate_trader",
    "market": "market", "group order": "group_order", "group": "group_order", "cooperative": "group_order",
    "coop": "group_order", "processor": "processor", "exporter": "processor", "miller": "processor",
}
# A survey's timestamp: the day is what counts (2026-11-12T08:30, 2026-11-12 08:30:00).
_ISO_WITH_TIME = re.compile(r"([0-9]{4}-[0-9]{1,2}-[0-9]{1,2})[T ][0-9:.]+")
_PLAIN_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_QTY, _CENT = decimal.Decimal("0.001"), decimal.Decimal("0.01")


class SaleFileError(ValueError):
    """The file as a whole cannot be read (missing, empty, wrong columns, not UTF-8 or CSV)."""


@dataclass
class ImportResult:
    """What an import did: counts for the summary line (rejected lines went to ``reject``)."""

    rows: int = 0
    imported: int = 0
    already: int = 0  # stored by an earlier import of the same rows
    repeated: int = 0  # the same sale twice in this file: stored once
    rejected: int = 0
    new_contacts: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Sale:
    """One line matched to the catalog and checked, ready to insert."""

    line: int
    ref: str
    fingerprint: str
    phone: str
    values: dict[str, object]


def _norm(text: str) -> str:
    """Lowercase ASCII-folded words: "Marché Thiès", "marche-thies" and "MARCHE THIES" meet."""
    flat = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\s_-]+", " ", flat.casefold()).split())


def _fingerprint(phone: str, values: dict[str, object]) -> str:
    """The sale as matched to the catalog, stable across spellings: identical sales share it."""
    parts = [phone, *(str(values[name]) for name in
                      ("sold_on", "commodity_id", "quantity", "unit_id", "price", "currency", "buyer_type",
                       "market_id", "grade_id"))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


class _Markets:
    """Markets by code, name, short name and alias; a name used in two countries means the farmer's own."""

    def __init__(self, session: so.Session) -> None:
        self.by_word: dict[str, dict[int, tuple[str, str]]] = {}
        known: dict[int, tuple[str, str]] = {}
        for market in session.scalars(sa.select(Market)):
            known[market.id] = (market.currency, market.country)
            for word in (market.code, market.name, market.short_name):
                self.by_word.setdefault(_norm(word), {})[market.id] = known[market.id]
        for word, market_id in session.execute(sa.select(MarketAlias.alias, MarketAlias.market_id)):
            self.by_word.setdefault(_norm(word), {})[market_id] = known[market_id]

    def find(self, raw: str, country: str | None) -> tuple[int, str]:
        """The market's id and currency, or RowError."""
        if not raw.strip():
            raise RowError("the market is empty")
        found = self.by_word.get(_norm(raw), {})
        here = {key: value for key, value in found.items() if value[1] == country} or found
        if not here:
            raise RowError(f"unknown market {raw!r}")
        if len(here) > 1:
            raise RowError(f"market {raw!r} names several markets: use its code")
        ((market_id, (currency, _)),) = here.items()
        return market_id, currency


class SaleImporter:
    """One run over one file: read, check and store in batches; ``reject`` hears of each bad line."""

    def __init__(self, session: so.Session, *, today: dt.date, region: str, language: str,
                 reject: Callable[[int, str], None], batch_size: int = BATCH_SIZE) -> None:
        self.session, self.today, self.region, self.language = session, today, region, language
        self.reject_line, self.batch_size = reject, batch_size
        self.matcher = CatalogMatcher(session, create_missing=False)
        self.markets = _Markets(session)
        self.result = ImportResult()
        self.width = 0  # fields in the header row
        # Rows of this run have higher ids: a conflict with one is a repeat within the file.
        self.first_new_id = (session.scalar(sa.select(sa.func.max(SaleReport.id))) or 0) + 1
        dialect = session.get_bind().dialect.name
        self.insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def run(self, path: Path, progress: Callable[[int], None]) -> ImportResult:
        """Import ``path``; ``progress`` gets the bytes read so far after each batch."""
        started = time.perf_counter()
        try:
            raw = path.open("rb")
        except OSError as exc:
            raise SaleFileError(f"cannot read {path}: {exc.strerror}") from None
        with raw:
            lines = _decoded(raw)
            first = next(lines, "")
            reader = csv.reader(itertools.chain([first], lines), delimiter=";" if first.count(";") > first.count(",")
                                else ",")
            batch: dict[str, _Sale] = {}
            try:
                columns = self._columns(next(reader, []), path)
                for line, record in self._records(reader):
                    sale = self._checked(line, record, columns)
                    if sale is not None and sale.ref in batch:
                        self._repeat(sale, batch[sale.ref])
                    elif sale is not None:
                        batch[sale.ref] = sale
                    if len(batch) >= self.batch_size:
                        self._store(batch)
                        batch = {}
                        progress(raw.tell())
            except (UnicodeDecodeError, csv.Error) as exc:
                self._store(batch)  # the lines before the broken one are good: keep them
                reason = "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"is not CSV ({exc})"
                raise SaleFileError(f"line {reader.line_num + 1}: {path.name} {reason}; the lines before it "
                                    "were imported") from None
            self._store(batch)
            progress(raw.tell())
        self.result.seconds = time.perf_counter() - started
        return self.result

    def _columns(self, header: list[str], path: Path) -> dict[str, int]:
        names = [_norm(name).replace(" ", "_") for name in header]
        if not any(names):
            raise SaleFileError(f"{path.name} is empty")
        missing = [name for name in COLUMNS if name not in names]
        if missing:
            raise SaleFileError(f"line 1: missing column(s) {', '.join(missing)}; the file needs "
                                f"{', '.join(COLUMNS)} (optional: {', '.join(OPTIONAL)})")
        self.width = len(header)
        return {name: names.index(name) for name in (*COLUMNS, *OPTIONAL) if name in names}

    def _records(self, reader: Any) -> Iterator[tuple[int, list[str]]]:
        """Non-blank records of a ``csv.reader`` with the file line each starts on."""
        line = reader.line_num
        for record in reader:
            start, line = line + 1, reader.line_num
            if any(cell.strip() for cell in record):
                self.result.rows += 1
                yield start, record

    def _checked(self, line: int, record: list[str], columns: dict[str, int]) -> _Sale | None:
        """The line as a sale, or None after rejecting it with its reason."""
        cell = price_files.cells(record, columns)
        try:
            if len(record) > self.width:
                raise RowError(f"{len(record)} fields where the header has {self.width} "
                               "(a comma inside a number? write 4300, not 4,300)")
            return self._sale(line, cell)
        except RowError as error:
            self.result.rejected += 1
            self.reject_line(line, str(error))
            return None

    def _sale(self, line: int, cell: Callable[[str], str]) -> _Sale:
        """Line ``line`` read through ``cell`` (a column's text), matched and checked, or RowError."""
        try:
            phone = normalize_phone(cell("phone"), self.region)
        except InvalidPhone:
            raise RowError(f"phone {cell('phone')!r} is not a valid number") from None
        sold_on = _date(cell("date"), self.today)
        unit = self.matcher.unit(cell("unit"))
        commodity_id = self.matcher.commodity(cell("commodity"), unit)
        quantity = _amount(cell("quantity"), "quantity", _QTY)
        if quantity * unit.factor > sales.MAX_QUANTITY_KG:
            raise RowError(f"quantity {cell('quantity')} {cell('unit')} is more than one farmer sells")
        price = _amount(cell("price"), "price", _CENT)
        if price >= decimal.Decimal("1e9"):
            raise RowError(f"price {cell('price')} is too large")
        buyer = BUYER_WORDS.get(_norm(cell("buyer_type")))
        if buyer is None:
            raise RowError(f"buyer_type {cell('buyer_type')!r} is not one of farm_gate_trader, market, "
                           "group_order, processor")
        market_id, currency = self.markets.find(cell("market"), catalog.country_for_phone(phone))
        if cell("currency") and cell("currency").upper() != currency:
            raise RowError(f"currency {cell('currency')} is not the market's currency {currency}")
        grade_id = self.matcher.grade(commodity_id, cell("grade")) if cell("grade") else None
        values: dict[str, object] = {
            "commodity_id": commodity_id, "grade_id": grade_id, "market_id": market_id, "quantity": quantity,
            "unit_id": unit.id, "price": price, "currency": currency, "buyer_type": buyer, "sold_on": sold_on,
            "price_per_base": _per_base(price, unit),
        }
        fingerprint = _fingerprint(phone, values)
        ref = cell("ref")
        if len(ref) > MAX_REF:
            raise RowError(f"ref is longer than {MAX_REF} characters")
        return _Sale(line, f"import:ref:{ref}" if ref else f"import:{fingerprint}", fingerprint, phone, values)

    def _store(self, batch: dict[str, _Sale]) -> None:
        """Insert the batch's new sales (and new contacts) and commit; count the rest."""
        fresh = dict(batch)
        stored = self.session.execute(
            sa.select(SaleReport, Contact.phone).join(Contact, Contact.id == SaleReport.contact_id)
            .where(SaleReport.source_ref.in_(list(fresh)))
        ).all() if fresh else []
        for report, phone in stored:
            sale = fresh.pop(cast(str, report.source_ref))
            if _fingerprint(phone, _stored_values(report)) != sale.fingerprint:
                self._refuse(sale.line, f"ref {_ref(sale)} is also on an earlier line with other values"
                             if report.id >= self.first_new_id
                             else f"ref {_ref(sale)} was imported before with other values: not changed")
            elif report.id >= self.first_new_id:
                self._repeat(sale, None)
            else:
                self.result.already += 1
        if fresh:
            contacts = self._contacts({sale.phone for sale in fresh.values()})
            now = utcnow()
            rows = [{**sale.values, "contact_id": contacts[sale.phone], "channel": "import", "source_ref": ref,
                     "created_at": now} for ref, sale in fresh.items()]
            table = cast(sa.Table, SaleReport.__table__)
            statement = self.insert(table).on_conflict_do_nothing(index_elements=["source_ref"])
            inserted = self.session.execute(statement.returning(table.c.source_ref), rows).scalars().all()
            self.result.imported += len(inserted)
            self.result.already += len(rows) - len(inserted)  # another import got there first
        self.session.commit()

    def _contacts(self, phones: set[str]) -> dict[str, int]:
        """Contact ids by phone, creating survey respondents (consent unknown) for new numbers."""
        query = sa.select(Contact.phone, Contact.id).where(Contact.phone.in_(list(phones)))
        known: dict[str, int] = {phone: contact_id for phone, contact_id in self.session.execute(query)}
        new = sorted(phones - known.keys())
        if new:
            table = cast(sa.Table, Contact.__table__)
            rows = [{"phone": phone, "language": self.language, "consent": "unknown", "created_at": utcnow()}
                    for phone in new]
            statement = self.insert(table).on_conflict_do_nothing(index_elements=["phone"])
            self.result.new_contacts += len(self.session.execute(statement.returning(table.c.id), rows).all())
            known.update({phone: contact_id for phone, contact_id in self.session.execute(query)})
        return known

    def _repeat(self, sale: _Sale, first: _Sale | None) -> None:
        """The same ref or sale twice in one file: one sale stored; a ref with other values is refused."""
        if first is not None and first.fingerprint != sale.fingerprint:
            self._refuse(sale.line, f"ref {_ref(sale)} is also on line {first.line} with other values")
            return
        self.result.repeated += 1
        where = f"line {first.line}" if first else "an earlier line"
        if _ref(sale):
            self.reject_line(sale.line, f"ref {_ref(sale)} repeats {where}: stored once")
        else:
            self.reject_line(sale.line, f"same sale as {where}: stored once (give each sale a ref to keep both)")

    def _refuse(self, line: int, reason: str) -> None:
        self.result.rejected += 1
        self.reject_line(line, reason)


def _decoded(raw: BinaryIO) -> Iterator[str]:
    """The file's lines as text, decoded one by one so that a bad byte is found on its own line."""
    for number, data in enumerate(raw):
        text = data.decode("utf-8")
        yield text.removeprefix("\ufeff") if number == 0 else text


def _ref(sale: _Sale) -> str:
    """The file's own ref of the sale, or "" when its key is the row's hash."""
    return sale.ref.removeprefix("import:ref:") if sale.ref.startswith("import:ref:") else ""


def _stored_values(report: SaleReport) -> dict[str, object]:
    """A stored sale's values in the form ``_fingerprint`` reads (the database's scale, the file's)."""
    return {"sold_on": report.sold_on, "commodity_id": report.commodity_id,
            "quantity": decimal.Decimal(report.quantity).quantize(_QTY), "unit_id": report.unit_id,
            "price": decimal.Decimal(report.price).quantize(_CENT), "currency": report.currency,
            "buyer_type": report.buyer_type, "market_id": report.market_id, "grade_id": report.grade_id}


def _date(raw: str, today: dt.date) -> dt.date:
    """The day of a sale: ISO or day first with a year, not in the future nor before the survey window."""
    timed = _ISO_WITH_TIME.fullmatch(raw)
    typed = sales.read_day(timed[1] if timed else raw)
    # A survey row says its year: "12/11" alone may be any year's.
    if typed is None or typed.year is None:
        raise RowError(f"date {raw!r} is not YYYY-MM-DD or DD/MM/YYYY")
    try:
        day = typed.date(today)
    except sales.SaleError:
        raise RowError(f"date {raw!r} does not exist") from None
    try:
        sales.check_sold_on(day, today, sales.OLDEST_IMPORTED_SALE)
    except sales.SaleError as error:
        if error.code == "future_date":
            raise RowError(f"date {raw} is after today ({today})") from None
        raise RowError(f"date {raw} is more than {sales.OLDEST_IMPORTED_SALE.days} days before today") from None
    return day


def _amount(raw: str, name: str, step: decimal.Decimal) -> decimal.Decimal:
    """A positive plain decimal ("4300", "12.5") at the column's scale."""
    if not _PLAIN_NUMBER.fullmatch(raw):
        raise RowError(f"{name} {raw!r} is not a plain number (digits, a dot for decimals)")
    # Compared before rounding: quantize fails on numbers wider than the decimal context.
    if decimal.Decimal(raw) >= price_files.MAX_AMOUNT:
        raise RowError(f"{name} {raw} is too large")
    value = decimal.Decimal(raw).quantize(step, rounding=decimal.ROUND_HALF_UP)
    if value <= 0:
        raise RowError(f"{name} {raw} is not above 0")
    return value


def _per_base(price: decimal.Decimal, unit: UnitRef) -> decimal.Decimal:
    return (price / unit.factor).quantize(decimal.Decimal("0.000001"))


def import_sales(session: so.Session, path: Path, *, today: dt.date, region: str, language: str,
                 reject: Callable[[int, str], None], progress: Callable[[int], None] = lambda _: None,
                 batch_size: int = BATCH_SIZE) -> ImportResult:
    """Import the survey sales of ``path`` (module docstring); rejected lines go to ``reject``."""
    importer = SaleImporter(session, today=today, region=region, language=language, reject=reject,
                            batch_size=batch_size)
    return importer.run(path, progress)
