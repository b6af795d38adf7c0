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
    - ``country`` (optional): the market's country, an ISO 3166 code (SN, SEN) or English name

In both, blank rows and rows whose first cell starts with ``#`` (HXL tags) are skipped. A
country column (``country``, HDX's ``countryiso3``, ``adm0_name``, or the one HXL tags
``#country``) gives each row's country. A row flagged as a forecast (``priceflag`` or
``pricetype``/``kind``) is no observed price: counted as such (:class:`Forecast`), never stored.

A line that cannot be read raises :class:`RowError`, with the reason for the operator.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import functools
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from babel import Locale
from babel.core import get_global

FORMATS = ("wfp", "generic")
WFP_COLUMNS = ("date", "market", "commodity", "unit", "pricetype", "currency", "price")
GENERIC_COLUMNS = ("date", "market", "commodity", "unit", "price", "currency", "kind")
KINDS = {"wholesale": "wholesale", "retail": "retail", "farm-gate": "farm_gate", "farm_gate": "farm_gate",
         "farmgate": "farm_gate", "farm gate": "farm_gate"}
CENT = decimal.Decimal("0.01")
MICRO = decimal.Decimal("0.000001")
MAX_AMOUNT = decimal.Decimal("1e12")  # Numeric(14, 2)
MAX_PER_BASE = decimal.Decimal("1e10")  # Numeric(16, 6)
# Columns naming each row's country, in the order they are looked for.
COUNTRY_COLUMNS = ("country", "countryiso3", "country_iso3", "iso3", "country_code", "adm0_name", "admin0")
FORECAST = "forecast"
# HDX names a country's WFP file after its ISO alpha-3 code (wfp_food_prices_sen.csv).
HDX_NAME = re.compile(r"wfp_food_prices_([a-z]{3})(?![a-z])")
# Usual names of countries that CLDR spells otherwise (UN and WFP use them).
COUNTRY_ALIASES = {
    "democratic republic of the congo": "CD", "republic of congo": "CG", "ivory coast": "CI", "turkey": "TR",
    "united republic of tanzania": "TZ", "lao people s democratic republic": "LA", "syrian arab republic": "SY",
    "state of palestine": "PS", "swaziland": "SZ", "the gambia": "GM",
}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (missing, empty, wrong columns)."""


class RowError(ValueError):
    """One line cannot be imported; the message says why."""


class Forecast(RowError):
    """The line is a forecast, not an observed price: counted as such, never stored."""


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


def _plain(text: str) -> str:
    """Lowercase ASCII words: "Côte d’Ivoire" and "cote_divoire" meet as far as they can."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


@functools.cache
def _country_names() -> dict[str, str]:
    """Country names in English and French (and without their bracketed part) -> ISO code."""
    zones = get_global("territory_zones")
    names = dict(COUNTRY_ALIASES)
    for lang in ("en", "fr"):
        for code, name in Locale(lang).territories.items():
            if len(code) == 2 and code in zones:
                for variant in (name, re.sub(r"\([^)]*\)", " ", name)):
                    names.setdefault(_plain(variant), code)
    return names


def country_code(text: str) -> str:
    """The ISO 3166 alpha-2 code of ``text`` (alpha-2, alpha-3 or a name); "" when empty."""
    word = text.strip()
    if not word:
        return ""
    zones = get_global("territory_zones")
    upper = word.upper()
    if len(upper) == 2 and upper in zones:
        return upper
    alias = get_global("territory_aliases").get(upper, []) if len(upper) == 3 else []
    if len(alias) == 1 and alias[0] in zones:
        return str(alias[0])
    found = _country_names().get(_plain(word))
    if found is None:
        raise RowError(f"unknown country {word!r} (an ISO 3166 code such as SN or SEN, or a country's name)")
    return found


def country_from_name(path: Path) -> str:
    """The country a file's name gives (wfp_food_prices_sen.csv, senegal_prices.csv), or ""."""
    stem = path.stem.lower()
    hdx = HDX_NAME.search(stem)
    if hdx:
        try:
            return country_code(hdx[1])
        except RowError:
            pass
    words = f" {_plain(stem)} "
    hits = {name: code for name, code in _country_names().items() if f" {name} " in words}
    # "guinea" inside "guinea bissau" is not a second country; two countries are no answer.
    kept = {code for name, code in hits.items() if not any(name != o and f" {name} " in f" {o} " for o in hits)}
    return kept.pop() if len(kept) == 1 else ""



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


def is_forecast(cell: Callable[[str], str]) -> bool:
    """True when the line is flagged as a forecast (``priceflag``, or ``pricetype``/``kind``)."""
    flag, kind = cell("priceflag").lower(), cell("kind").lower()
    if FORECAST not in flag and FORECAST not in kind:
        return False  # most lines: no splitting
    return FORECAST in {norm(part) for part in flag.split(",")} or norm(kind) == FORECAST


def parse_row(cell: Callable[[str], str], line: int) -> Row:
    """A row of either format: a column a format lacks reads as empty."""
    # Before any other cell: a forecast's price is often 0 and its date in the future.
    if is_forecast(cell):
        raise Forecast("a forecast, not an observed price")
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
        country=country_code(cell("country")),
        region=cell("admin1"),
        latitude=_coordinate(cell("latitude")),
        longitude=_coordinate(cell("longitude")),
    )


def source_ref(row: Row, country: str = "") -> str:
    """A stable key of the row's identity (not its price): the same row imported twice collides.

    ``country`` is given where the currency does not tell it (XOF is used in eight
    countries), so that same-named markets of two countries stay two rows.
    """
    parts = [
        row.day.isoformat(),
        norm(row.market),
        norm(row.commodity),
        norm(row.unit),
        row.kind,
        row.currency,
    ]
    if country:
        parts.append(country)
    if row.grade.strip():
        parts.append(norm(row.grade))
    key = "|".join(parts)
    if len(key) <= 120:
        return key
    # Too long for the column: keep a readable start and make it unique with a digest.
    return f"{key[:95]}#{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def cells(record: list[str], columns: dict[str, int]) -> Callable[[str], str]:
    """The stripped cell of ``record`` in a named column; "" for a column the file lacks."""

    def cell(name: str) -> str:
        position = columns.get(name)
        value = record[position] if position is not None and position < len(record) else ""
        # PostgreSQL text cannot hold a NUL character, and no name or number has one.
        return value.replace("\x00", "").strip()

    return cell


def skipped(record: list[str]) -> bool:
    """Blank lines and HXL tag rows carry no price."""
    return not any(value.strip() for value in record) or record[0].lstrip().startswith("#")


def columns_of(header: list[str], fmt: str, tags: list[str]) -> dict[str, int]:
    """Each column the import reads -> its position; ``tags`` is the HXL row, if any."""
    columns = {name: position for position, name in reversed(list(enumerate(header)))}
    country = next((columns[name] for name in COUNTRY_COLUMNS if name in columns), None)
    if country is None:
        country = next((i for i, tag in enumerate(tags) if tag.strip().lower().startswith("#country")), None)
    columns.pop("country", None)
    if country is not None:
        columns["country"] = country
    if fmt == "wfp":
        columns["kind"] = columns["pricetype"]  # and WFP files have no grade
        columns.pop("grade", None)
    return columns


@dataclass
class Survey:
    """What one streaming pass over a file tells before its first row is imported."""

    columns: dict[str, int]
    width: int
    # Per commodity name (normalised): its spellings in the file, and the units it is priced in.
    spellings: dict[str, Counter[str]] = field(default_factory=dict)
    units: dict[str, Counter[str]] = field(default_factory=dict)
    # (market, currency) of rows without a country -> (first line, market as written).
    places: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def spelling(self, key: str) -> str:
        """The file's most frequent spelling of commodity ``key`` (a tie: the first in sort order)."""
        counts = self.spellings.get(key)
        return min(counts.items(), key=lambda item: (-item[1], item[0]))[0] if counts else ""

    def count(self, names: Counter[tuple[str, str]], places: dict[tuple[str, str], int]) -> None:
        """Normalise what the pass counted as written: (commodity, unit) and (market, currency) -> line."""
        for (commodity, unit), number in names.items():
            key = norm(commodity)
            if key:
                self.spellings.setdefault(key, Counter())[commodity] += number
                self.units.setdefault(key, Counter())[unit] += number
        for (market, currency), line in sorted(places.items(), key=lambda item: item[1]):
            self.places.setdefault((norm(market), currency.upper()), (line, market))


def unreadable(error: UnicodeDecodeError | csv.Error, line: int, path: Path) -> ImportFileError:
    """The one-line error of a file that stops being UTF-8 or CSV at ``line``."""
    reason = "is not UTF-8 text" if isinstance(error, UnicodeDecodeError) else f"is not CSV ({error})"
    return ImportFileError(f"line {line}: {path.name} {reason}")


def survey_file(path: Path, fmt: str) -> Survey:
    """Read ``path`` once, streaming, for its columns and names; nothing is imported."""
    # Counted as written (a few distinct values), normalised once at the end.
    names: Counter[tuple[str, str]] = Counter()
    places: dict[tuple[str, str], int] = {}  # of rows without a country
    with open_file(path) as handle:
        reader = csv.reader(handle)
        try:
            header = check_header(next(reader, []), fmt, path)
            found: Survey | None = None
            for record in reader:
                if found is None and any(value.strip() for value in record):
                    tags = record if record[0].lstrip().startswith("#") else []
                    found = Survey(columns_of(header, fmt, tags), len(header))
                if found is None or skipped(record) or len(record) < found.width:
                    continue
                cell = cells(record, found.columns)
                if not is_forecast(cell):  # a forecast is never imported
                    names[cell("commodity"), cell("unit")] += 1
                    if not cell("country"):
                        places.setdefault((cell("market"), cell("currency")), reader.line_num)
        except (UnicodeDecodeError, csv.Error) as error:
            raise unreadable(error, reader.line_num + 1, path) from None
    survey = found or Survey(columns_of(header, fmt, []), len(header))
    survey.count(names, places)
    return survey


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
