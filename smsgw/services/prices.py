"""Price look-ups for farmers: the latest approved price, its weekly change, the best nearby market."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import statistics
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.models import Commodity, Market, PriceObservation, Unit

NEARBY_KM = 400
WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class Quote:
    """One market's price for a commodity, per the commodity's usual unit."""

    market: Market
    commodity: Commodity
    unit: Unit
    day: dt.date
    amount: decimal.Decimal
    currency: str
    week_change_pct: decimal.Decimal | None = None


def _per_unit(per_base: decimal.Decimal, unit: Unit) -> decimal.Decimal:
    return (per_base * unit.factor).quantize(decimal.Decimal("0.01"))


def price_on_or_before(
    session: so.Session, commodity: Commodity, market: Market, day: dt.date, kind: str = "wholesale"
) -> tuple[dt.date, decimal.Decimal] | None:
    """The median approved price per base unit on the latest day with data up to ``day``."""
    latest = session.scalar(
        sa.select(sa.func.max(PriceObservation.observed_on)).where(
            PriceObservation.commodity_id == commodity.id,
            PriceObservation.market_id == market.id,
            PriceObservation.kind == kind,
            PriceObservation.status == "approved",
            PriceObservation.observed_on <= day,
        )
    )
    if latest is None:
        return None
    values = session.scalars(
        sa.select(PriceObservation.price_per_base).where(
            PriceObservation.commodity_id == commodity.id,
            PriceObservation.market_id == market.id,
            PriceObservation.kind == kind,
            PriceObservation.status == "approved",
            PriceObservation.observed_on == latest,
        )
    ).all()
    return latest, decimal.Decimal(statistics.median(values))


def latest_quote(
    session: so.Session,
    commodity: Commodity,
    market: Market,
    as_of: dt.date,
    kind: str = "wholesale",
) -> Quote | None:
    """The latest approved price up to ``as_of`` and its change against a week before."""
    found = price_on_or_before(session, commodity, market, as_of, kind)
    if found is None:
        return None
    day, per_base = found
    change = None
    earlier = price_on_or_before(session, commodity, market, day - WEEK, kind)
    if earlier is not None and day - earlier[0] <= WEEK * 2 and earlier[1] > 0:
        change = ((per_base - earlier[1]) / earlier[1] * 100).quantize(decimal.Decimal("0.1"))
    unit = commodity.default_unit
    return Quote(
        market=market,
        commodity=commodity,
        unit=unit,
        day=day,
        amount=_per_unit(per_base, unit),
        currency=market.currency,
        week_change_pct=change,
    )


def distance_km(a: Market, b: Market) -> float | None:
    """Great-circle distance between two markets, None if either has no coordinates."""
    if None in (a.latitude, a.longitude, b.latitude, b.longitude):
        return None
    lat1, lon1, lat2, lon2 = map(
        math.radians, map(float, (a.latitude, a.longitude, b.latitude, b.longitude))
    )
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 6371.0 * 2 * math.asin(math.sqrt(h))


def nearby_markets(
    session: so.Session, market: Market, radius_km: float = NEARBY_KM
) -> list[Market]:
    """Other markets of the same currency within ``radius_km``, nearest first."""
    others = session.scalars(
        sa.select(Market).where(Market.currency == market.currency, Market.id != market.id)
    ).all()
    placed = [(distance_km(market, other), other) for other in others]
    near = [(d, m) for d, m in placed if d is not None and d <= radius_km]
    return [m for _, m in sorted(near, key=lambda pair: pair[0])]


def latest_prices(
    session: so.Session, commodity: Commodity, markets: list[Market], day: dt.date, kind: str = "wholesale"
) -> dict[int, tuple[dt.date, decimal.Decimal]]:
    """``price_on_or_before`` for many markets at once: market id -> (day, median per base unit).

    Two queries whatever the number of markets, where asking market by market costs two each.
    """
    if not markets:
        return {}
    approved = (
        PriceObservation.commodity_id == commodity.id,
        PriceObservation.market_id.in_([market.id for market in markets]),
        PriceObservation.kind == kind,
        PriceObservation.status == "approved",
    )
    latest = dict(session.execute(
        sa.select(PriceObservation.market_id, sa.func.max(PriceObservation.observed_on))
        .where(*approved, PriceObservation.observed_on <= day)
        .group_by(PriceObservation.market_id)
    ).all())
    if not latest:
        return {}
    values: dict[int, list[decimal.Decimal]] = {}
    rows = session.execute(
        sa.select(PriceObservation.market_id, PriceObservation.observed_on, PriceObservation.price_per_base)
        .where(*approved, PriceObservation.observed_on.in_(set(latest.values())))
    )
    for market_id, observed_on, per_base in rows:
        if latest.get(market_id) == observed_on:
            values.setdefault(market_id, []).append(per_base)
    return {market_id: (latest[market_id], decimal.Decimal(statistics.median(found))) for market_id, found in values.items()}


def best_nearby(
    session: so.Session,
    quote: Quote,
    max_age: dt.timedelta = WEEK,
    radius_km: float = NEARBY_KM,
) -> Quote | None:
    """The nearby market paying most for the commodity, if it pays more than ``quote``."""
    others = nearby_markets(session, quote.market, radius_km)
    latest = latest_prices(session, quote.commodity, others, quote.day)
    best: tuple[decimal.Decimal, Market] | None = None
    for other in others:  # nearest first: of two equal prices the nearer market wins
        found = latest.get(other.id)
        if found is None or quote.day - found[0] > max_age:
            continue
        amount = _per_unit(found[1], quote.commodity.default_unit)
        if amount > quote.amount and (best is None or amount > best[0]):
            best = (amount, other)
    return latest_quote(session, quote.commodity, best[1], quote.day) if best else None


def markets_with_prices(
    session: so.Session, commodity: Commodity, country: str | None = None
) -> list[Market]:
    """Markets that have approved prices for ``commodity``, by name."""
    query = (
        sa.select(Market)
        .join(PriceObservation, PriceObservation.market_id == Market.id)
        .where(PriceObservation.commodity_id == commodity.id, PriceObservation.status == "approved")
        .distinct()
        .order_by(Market.name)
    )
    if country:
        query = query.where(Market.country == country)
    return list(session.scalars(query).all())
