"""Price files: the two CSV formats, their columns, and one line read into a :class:`Row`.

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

A line that cannot be read raises :class:`RowError`, with the reason for the operator.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

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
CENT = decimal.Decimal("0.01")
MICRO = decimal.Decimal("0.000001")
MAX_AMOUNT = decimal.Decimal("1e12")  # Numeric(14, 2)
MAX_PER_BASE = decimal.Decimal("1e10")  # Numeric(16, 6)

class ImportFileError(ValueError):
    """The file as a whole cannot be imported (missing, empty, wrong columns)."""


class RowError(ValueError):
    """One line cannot be imported; the message says why."""


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



def norm(text: str) -> str:
    """Lowercase with single spaces: how names, aliases and units are compared."""
    return " ".join(text.lower().split())



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
    # Compared before rounding: quantize fails on numbers wider than the decimal context (1e400).
    if value >= MAX_AMOUNT:
        raise RowError(f"price {text.strip()} is too large")
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


def parse_row(cell: Callable[[str], str], line: int) -> Row:
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


def source_ref(row: Row) -> str:
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


def open_file(path: Path) -> TextIO:
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None


def check_header(names: list[str], fmt: str, path: Path) -> list[str]:
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
    with open_file(path) as handle:
        try:
            check_header(next(csv.reader(handle), []), fmt, path)
        except (UnicodeDecodeError, csv.Error):
            raise ImportFileError(f"line 1: {path.name} is not UTF-8 CSV text") from None
    with path.open("rb") as raw:
        # Counting lines streams the file: it is never held in memory.
        return max(sum(1 for _ in raw) - 1, 0)
