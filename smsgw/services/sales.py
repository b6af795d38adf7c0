"""Sale reports: what farmers received. Validated here for USSD and SMS alike."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass, field

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.models import Commodity, Contact, InboundMessage, Market, PriceObservation, SaleReport, Unit
from smsgw.models.sales import BUYER_TYPES

RECENT = dt.timedelta(days=30)
# How far back a farmer may report a sale by SMS or USSD: a season's sales are remembered,
# and a date beyond a year is likelier a typo (a wrong year) than a sale.
OLDEST_REPORTED_SALE = dt.timedelta(days=366)
# How far back a baseline survey's sales may go (``smsgw import-sales``): the seasons
# before the service, for the before/after comparison, not a decade of recollection.
OLDEST_IMPORTED_SALE = dt.timedelta(days=5 * 366)
# Years tried for a day and month typed without one: 29 February needs up to four.
_LEAP_CYCLE = 4
# Farm-gate prices sit well below wholesale (44-46 % is documented), and a good sale can
# beat it; outside this band a typo (an extra zero) is likelier than a real price.
PLAUSIBLE_LOW, PLAUSIBLE_HIGH = decimal.Decimal("0.3"), decimal.Decimal("1.8")
MAX_QUANTITY_KG = decimal.Decimal(1_000_000)


class SaleError(ValueError):
    """A sale report that cannot be stored; ``code`` says why."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Range:
    """Recent approved prices per base unit in a market."""

    low: decimal.Decimal
    high: decimal.Decimal


def sale_day(day: int, month: int, year: int | None, today: dt.date) -> dt.date:
    """The date a farmer means by ``day``/``month`` (``year`` optional), or SaleError("bad_date").

    Without a year it is the most recent such date not after ``today`` ("28/12" sent on
    2 January is last year's); with one it is exactly that date, checked by ``check_sold_on``.
    """
    years = [year] if year is not None else range(today.year, today.year - _LEAP_CYCLE - 1, -1)
    for candidate in years:
        try:
            found = dt.date(candidate, month, day)
        except ValueError:
            continue  # no such day that year (31 April; 29 February outside a leap year)
        if year is not None or found <= today:
            return found
    raise SaleError("bad_date")


@dataclass(frozen=True)
class TypedDay:
    """A day as a person wrote it: ``days_ago`` ("yesterday"), or a day and month, year optional.

    What it means depends on today (``date``).
    """

    day: int = 0
    month: int = 0
    year: int | None = None
    days_ago: int | None = None
    # What stood between day and month ("/", ".", "-", " "; "" for keypad digits): how it
    # was written, not which day it is.
    separator: str = field(default="", compare=False)

    def date(self, today: dt.date) -> dt.date:
        """The date meant, read on ``today`` (``sale_day``); SaleError("bad_date") when none."""
        if self.days_ago is not None:
            return today - dt.timedelta(days=self.days_ago)
        return sale_day(self.day, self.month, self.year, today)


# 2026-11-12; day first 12/11, 12.11.26, 12-11-2026, 12 11 (one separator throughout);
# keypad digits 2511, 251126, 25112026 (a phone's keypad has no slash). A four-digit year
# is 19xx or 20xx: "4300 12-11" at the end of a SOLD is a price and a day, not 12 Nov 4300.
_YEAR = r"(?:19|20)[0-9]{2}"
_ISO_DAY = re.compile(rf"({_YEAR})-([0-9]{{1,2}})-([0-9]{{1,2}})")
_DAY_FIRST = re.compile(rf"([0-9]{{1,2}})([/. -])([0-9]{{1,2}})(?:\2([0-9]{{2}}|{_YEAR}))?")
_KEYPAD_DAY = re.compile(rf"([0-9]{{2}})([0-9]{{2}})([0-9]{{2}}|{_YEAR})?")


def read_day(text: str, keypad: bool = False) -> TypedDay | None:
    """The day ``text`` is (all of it), or None: year first with hyphens, or day first;
    with ``keypad`` digits alone too. A two-digit year is this century's."""
    if iso := _ISO_DAY.fullmatch(text):
        return TypedDay(int(iso[3]), int(iso[2]), int(iso[1]), separator="-")
    if found := _DAY_FIRST.fullmatch(text):
        day, separator, month, year = found.groups()
    elif keypad and (found := _KEYPAD_DAY.fullmatch(text)):
        (day, month, year), separator = found.groups(), ""
    else:
        return None
    full_year = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
    return TypedDay(int(day), int(month), full_year, separator=separator)


def check_sold_on(sold_on: dt.date, today: dt.date, oldest: dt.timedelta = OLDEST_REPORTED_SALE) -> None:
    """Raise SaleError("future_date") or SaleError("old_date") for a day no sale can have."""
    if sold_on > today:
        raise SaleError("future_date")
    if sold_on < today - oldest:
        raise SaleError("old_date")


def recent_range(
    session: so.Session, commodity: Commodity, market: Market | None, today: dt.date
) -> Range | None:
    """The lowest and highest approved price per base unit in the last 30 days."""
    query = sa.select(
        sa.func.min(PriceObservation.price_per_base), sa.func.max(PriceObservation.price_per_base)
    ).where(
        PriceObservation.commodity_id == commodity.id,
        PriceObservation.status == "approved",
        PriceObservation.observed_on.between(today - RECENT, today),
    )
    if market is not None:
        query = query.where(PriceObservation.market_id == market.id)
    low, high = session.execute(query).one()
    return Range(decimal.Decimal(low), decimal.Decimal(high)) if low is not None else None


def is_plausible(
    session: so.Session,
    commodity: Commodity,
    market: Market | None,
    price: decimal.Decimal,
    unit: Unit,
    today: dt.date,
) -> bool:
    """False when the price per base unit is far outside the market's recent range."""
    band = recent_range(session, commodity, market, today) or recent_range(
        session, commodity, None, today
    )
    if band is None:
        return True
    per_base = price / unit.factor
    return band.low * PLAUSIBLE_LOW <= per_base <= band.high * PLAUSIBLE_HIGH


def validate(
    quantity: decimal.Decimal, unit: Unit, price: decimal.Decimal, buyer_type: str
) -> None:
    """Raise SaleError for a sale that cannot be true whatever the market."""
    if quantity <= 0 or unit.to_base(quantity) > MAX_QUANTITY_KG:
        raise SaleError("bad_quantity")
    if price <= 0 or price >= decimal.Decimal("1e9"):
        raise SaleError("bad_price")
    if buyer_type not in BUYER_TYPES:
        raise SaleError("bad_buyer")


def report_sale(
    session: so.Session,
    contact: Contact,
    *,
    commodity: Commodity,
    quantity: decimal.Decimal,
    unit: Unit,
    price: decimal.Decimal,
    buyer_type: str,
    sold_on: dt.date,
    channel: str,
    source_ref: str,
    group_order_id: int | None = None,
    today: dt.date | None = None,
) -> SaleReport:
    """Store a sale (``price`` per ``unit``) made on ``sold_on``; the same ``source_ref`` twice
    stores it once. Given ``today`` (a farmer's own report), ``sold_on`` must be a day up to
    ``OLDEST_REPORTED_SALE`` before it."""
    existing = session.scalar(sa.select(SaleReport).where(SaleReport.source_ref == source_ref))
    if existing is not None:
        return existing
    validate(quantity, unit, price, buyer_type)
    if today is not None:
        check_sold_on(sold_on, today)
    market = contact.home_market
    if market is None:
        raise SaleError("not_registered")
    report = SaleReport(
        contact_id=contact.id,
        commodity_id=commodity.id,
        market_id=market.id,
        quantity=quantity,
        unit_id=unit.id,
        price=price,
        currency=market.currency,
        price_per_base=(price / unit.factor).quantize(decimal.Decimal("0.000001")),
        buyer_type=buyer_type,
        sold_on=sold_on,
        group_order_id=group_order_id,
        channel=channel,
        source_ref=source_ref,
    )
    session.add(report)
    session.flush()
    return report


def said_before(session: so.Session, message: InboundMessage, within: dt.timedelta = dt.timedelta(hours=1)) -> bool:
    """True when the same text came from the same number within ``within`` before ``message``:
    a farmer's way of confirming an unusual price ("send the same SMS again")."""
    return session.scalar(
        sa.select(InboundMessage.id)
        .where(
            InboundMessage.from_phone == message.from_phone,
            InboundMessage.text == message.text,
            InboundMessage.id != message.id,
            InboundMessage.received_at >= message.received_at - within,
        )
        .limit(1)
    ) is not None
