"""Price look-ups for farmers: the latest approved price, its weekly change, the best nearby market."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.geo import haversine_km
from smsgw.models import Commodity, Market, PriceObservation, Unit
from smsgw.services import change_tokens  # noqa: F401  (announces writes of prices and the catalog)

WEEK = dt.timedelta(days=7)
# Defaults of the settings PRICE_MAX_AGE_DAYS, PRICE_MAX_AGE_BY_COMMODITY and PRICE_NEARBY_KM
# (smsgw.config): the one place farmer answers, bulletins and analytics learn how old a
# price may be and still be called current, and how far "best nearby" may look.
DEFAULT_MAX_AGE_DAYS = 14
DEFAULT_NEARBY_KM = 150


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
    # Set on a "best nearby" quote: how far its market is from the farmer's.
    distance_km: float | None = None


def _max_age_overrides(settings: Mapping[str, Any]) -> dict[str, int]:
    """``"tomatoes:7,onion=5"`` (or a mapping) -> {"tomatoes": 7, "onion": 5}."""
    raw = settings.get("PRICE_MAX_AGE_BY_COMMODITY") or {}
    if isinstance(raw, Mapping):
        return {str(code).strip().lower(): int(days) for code, days in raw.items()}
    pairs = (item.replace("=", ":").split(":", 1) for item in str(raw).split(",") if item.strip())
    return {code.strip().lower(): int(days) for code, days in pairs}


def price_max_age(commodity: Commodity | str, settings: Mapping[str, Any] | None = None) -> dt.timedelta:
    """How old a price of ``commodity`` may be and still be shown as current.

    ``PRICE_MAX_AGE_BY_COMMODITY`` (per commodity code) wins over ``PRICE_MAX_AGE_DAYS``
    (everyone else, default 14). ``commodity`` is a Commodity or its code.
    """
    settings = settings or {}
    code = (commodity if isinstance(commodity, str) else commodity.code).lower()
    days = _max_age_overrides(settings).get(code)
    if days is None:
        days = int(settings.get("PRICE_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))
    return dt.timedelta(days=days)


def is_fresh(
    commodity: Commodity | str,
    observed_on: dt.date,
    as_of: dt.date,
    settings: Mapping[str, Any] | None = None,
) -> bool:
    """True when a price observed on ``observed_on`` may be called current on ``as_of``."""
    return as_of - observed_on <= price_max_age(commodity, settings)


def quote_is_fresh(quote: Quote, as_of: dt.date, settings: Mapping[str, Any] | None = None) -> bool:
    """``is_fresh`` for a quote."""
    return is_fresh(quote.commodity, quote.day, as_of, settings)


def nearby_radius_km(settings: Mapping[str, Any] | None = None) -> float:
    """How far (km) "best nearby" looks: PRICE_NEARBY_KM, default 150."""
    return float((settings or {}).get("PRICE_NEARBY_KM", DEFAULT_NEARBY_KM))


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
    if a.latitude is None or a.longitude is None or b.latitude is None or b.longitude is None:
        return None
    return float(haversine_km(float(a.latitude), float(a.longitude), float(b.latitude), float(b.longitude)))


def nearest_first(market: Market, others: Iterable[Market], radius_km: float = DEFAULT_NEARBY_KM) -> list[Market]:
    """Of ``others``, those of ``market``'s currency within ``radius_km`` (not ``market`` itself), nearest first."""
    placed = [
        (distance_km(market, other), other)
        for other in others
        if other.currency == market.currency and other.id != market.id
    ]
    near = [(d, m) for d, m in placed if d is not None and d <= radius_km]
    return [m for _, m in sorted(near, key=lambda pair: pair[0])]


def nearby_markets(
    session: so.Session, market: Market, radius_km: float = DEFAULT_NEARBY_KM
) -> list[Market]:
    """Other markets of the same currency within ``radius_km``, nearest first."""
    others = session.scalars(
        sa.select(Market).where(Market.currency == market.currency, Market.id != market.id)
    ).all()
    return nearest_first(market, others, radius_km)


def latest_prices(
    session: so.Session, commodity: Commodity, markets: list[Market], day: dt.date, kind: str = "wholesale"
) -> dict[int, tuple[dt.date, decimal.Decimal]]:
    """``price_on_or_before`` for many markets at once: market id -> (day, median per base unit).

    Two queries whatever the number of markets, where asking market by market costs two each.
    Each market's latest day is its own ``max()`` under the lookup index, which the database
    answers by reading one index entry backwards; a ``GROUP BY`` market would read every
    day of every market's history.
    """
    if not markets:
        return {}
    approved = (
        PriceObservation.commodity_id == commodity.id,
        PriceObservation.kind == kind,
        PriceObservation.status == "approved",
    )
    latest_day = (
        sa.select(sa.func.max(PriceObservation.observed_on))
        .where(*approved, PriceObservation.market_id == Market.id, PriceObservation.observed_on <= day)
        .scalar_subquery()
    )
    latest = {
        market_id: found
        for market_id, found in session.execute(
            sa.select(Market.id, latest_day).where(Market.id.in_([market.id for market in markets]))
        ).all()
        if found is not None
    }
    if not latest:
        return {}
    values: dict[int, list[decimal.Decimal]] = {}
    rows = session.execute(
        sa.select(PriceObservation.market_id, PriceObservation.observed_on, PriceObservation.price_per_base)
        .where(
            *approved, PriceObservation.market_id.in_(latest), PriceObservation.observed_on.in_(set(latest.values()))
        )
    )
    for market_id, observed_on, per_base in rows:
        if latest.get(market_id) == observed_on:
            values.setdefault(market_id, []).append(per_base)
    return {
        market_id: (latest[market_id], decimal.Decimal(statistics.median(found))) for market_id, found in values.items()
    }


def pick_best(
    quote: Quote,
    others: list[Market],
    latest: Mapping[int, tuple[dt.date, decimal.Decimal]],
    as_of: dt.date,
    settings: Mapping[str, Any] | None = None,
) -> Market | None:
    """Of ``others`` (nearest first), the market whose fresh latest price beats ``quote`` the most.

    ``latest`` is ``latest_prices`` of those markets. Of two equal prices the nearer market wins.
    """
    best: tuple[decimal.Decimal, Market] | None = None
    for other in others:
        found = latest.get(other.id)
        if found is None or not is_fresh(quote.commodity, found[0], as_of, settings):
            continue
        amount = _per_unit(found[1], quote.commodity.default_unit)
        if amount > quote.amount and (best is None or amount > best[0]):
            best = (amount, other)
    return best[1] if best else None


def best_nearby(
    session: so.Session,
    quote: Quote,
    settings: Mapping[str, Any] | None = None,
    as_of: dt.date | None = None,
) -> Quote | None:
    """The nearby market paying most for the commodity, if it pays more than ``quote``.

    Only markets within ``nearby_radius_km(settings)`` with a price still fresh on
    ``as_of`` (default: the quote's day) count: an old high price elsewhere is no reason
    to carry a harvest there. The result carries its ``distance_km``.
    """
    as_of = as_of or quote.day
    others = nearby_markets(session, quote.market, nearby_radius_km(settings))
    best = pick_best(quote, others, latest_prices(session, quote.commodity, others, as_of), as_of, settings)
    if best is None:
        return None
    found_quote = latest_quote(session, quote.commodity, best, as_of)
    if found_quote is None:
        return None
    return dataclasses.replace(found_quote, distance_km=distance_km(quote.market, best))


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
