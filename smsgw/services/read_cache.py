"""What USSD screens read on nearly every hop and what rarely changes, kept in each process.

The catalog (commodities with their usual unit, units, markets by name, public grades
with their limits), who leads a group, which crops are priced in a country, and the
answers computed from approved prices (a crop's latest quote in a market on a day, the
best nearby market) are read once, then served from memory until what they depend on
changes. A price screen then costs no query at all.

How a change is seen in every process (several gunicorn workers, the scheduler, the CLI):

- Each hop reads the catalog and prices tokens of ``services.change_tokens`` and the
  highest price id in one indexed SELECT, before it reads anything else, and uses cached
  data only if it was built under the same values. The id also sees prices written by a
  path that bypasses SQLAlchemy (COPY).
- A transaction that has itself written a watched table must see its own writes: it gets
  a private snapshot read through its own connection, never the shared one.
- Whatever the tokens say, a snapshot older than ``MAX_AGE_SECONDS`` is rebuilt, so an
  edit made outside the application (psql) is seen within that time.

Cached rows are ORM instances detached from any session and shared between threads:
read them, never change them or hand them to a session (a screen that writes loads its
own copy with ``session.get``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.models import Commodity, Grade, Market, Membership, PriceObservation, Unit
from smsgw.services import catalog, change_tokens, prices
from smsgw.services.prices import Quote

MAX_AGE_SECONDS = 60.0


@dataclasses.dataclass
class Catalog:
    """Catalog rows as read under one catalog token."""

    token: str | None
    built: float  # time.monotonic()
    commodities: list[Commodity]  # by id
    units: dict[int, Unit]
    markets: list[Market]  # by name, as the database sorts them
    grades: dict[int, list[Grade]]  # commodity id -> public grades, best first
    leaders: frozenset[int]  # contacts who lead a group
    nearby: dict[tuple[int, float], list[Market]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.commodity_by_id = {item.id: item for item in self.commodities}
        self.market_by_id = {item.id: item for item in self.markets}


@dataclasses.dataclass
class PriceFacts:
    """What approved prices say, filled as hops ask, under one prices token and price id."""

    key: tuple[str | None, int | None]
    built: float
    priced: dict[str, frozenset[int]] = dataclasses.field(default_factory=dict)
    quotes: dict[tuple[int, int, str, dt.date], Quote | None] = dataclasses.field(default_factory=dict)
    best: dict[tuple[Any, ...], Quote | None] = dataclasses.field(default_factory=dict)


_lock = threading.Lock()
_shared: dict[str, tuple[Catalog, PriceFacts]] = {}  # by database URL
_MAX_DATABASES = 8


def _load_catalog(conn: sa.Connection, token: str | None) -> Catalog:
    """Read the catalog through ``conn`` (in its transaction) into detached instances."""
    with so.Session(bind=conn) as loader:
        units = {unit.id: unit for unit in loader.scalars(sa.select(Unit))}
        commodities = list(loader.scalars(sa.select(Commodity).order_by(Commodity.id)))
        for commodity in commodities:
            commodity.default_unit  # noqa: B018  (loaded now: a detached instance cannot load it later)
        markets = list(loader.scalars(sa.select(Market).order_by(Market.name)))
        grades: dict[int, list[Grade]] = {}
        query = (
            sa.select(Grade).where(Grade.buyer_id.is_(None)).order_by(Grade.commodity_id, Grade.rank, Grade.id)
            .options(so.selectinload(Grade.limits))
        )
        for grade in loader.scalars(query):
            grade.commodity  # noqa: B018  (from the identity map, no query)
            grades.setdefault(grade.commodity_id, []).append(grade)
        leaders = frozenset(loader.scalars(sa.select(Membership.contact_id).where(Membership.role == "leader")))
    return Catalog(token, time.monotonic(), commodities, units, markets, grades, leaders)


def token_columns() -> list[sa.ScalarSelect[Any]]:
    """What ``reads`` compares: the catalog token, the prices token, the highest price id.

    Columns to add to a query a hop makes anyway (one round trip less); pass the values
    they return to ``reads``, in this order.
    """
    return [
        change_tokens.token_column(change_tokens.CATALOG),
        change_tokens.token_column(change_tokens.PRICES),
        sa.select(sa.func.max(PriceObservation.id)).scalar_subquery(),
    ]


def reads(session: so.Session, versions: Sequence[Any] | None = None) -> Reads:
    """The cached reads for ``session``'s transaction.

    ``versions``: the values of ``token_columns()`` read in this transaction before any
    cached data; without them one indexed SELECT reads them now.
    """
    session.flush()  # pending changes first, so that they count as this transaction's writes
    conn = session.connection()
    if change_tokens.uncommitted(conn):
        now = time.monotonic()
        return Reads(session, _load_catalog(conn, None), PriceFacts((None, None), now))
    catalog_token, prices_token, price_id = versions or conn.execute(sa.select(*token_columns())).one()
    key = conn.engine.url.render_as_string(hide_password=False)
    with _lock:
        found = _shared.get(key)
    # Built outside the lock: a slow database must not hold every thread of the worker
    # behind one rebuild. Two threads may build at once; the tokens, compared on every
    # use, make whichever entry is kept right or rebuilt.
    now = time.monotonic()
    if found is None or found[0].token != catalog_token or now - found[0].built > MAX_AGE_SECONDS:
        found = (_load_catalog(conn, catalog_token), PriceFacts((prices_token, price_id), now))
    elif found[1].key != (prices_token, price_id) or now - found[1].built > MAX_AGE_SECONDS:
        found = (found[0], PriceFacts((prices_token, price_id), now))
    with _lock:
        if _shared.get(key) is not found:
            _shared.pop(key, None)
            _shared[key] = found
            while len(_shared) > _MAX_DATABASES:
                del _shared[next(iter(_shared))]
    return Reads(session, found[0], found[1])


class Reads:
    """One transaction's view of the cache; what is missing is read through its session."""

    def __init__(self, session: so.Session, catalog: Catalog, facts: PriceFacts) -> None:
        self.session = session
        self.catalog = catalog
        self.facts = facts

    def commodity(self, commodity_id: int) -> Commodity:
        """The commodity with this id (LookupError if there is none)."""
        found = self.catalog.commodity_by_id.get(commodity_id)
        if found is None:
            raise LookupError(f"no commodity {commodity_id}")
        return found

    def market(self, market_id: int) -> Market:
        """The market with this id (LookupError if there is none)."""
        found = self.catalog.market_by_id.get(market_id)
        if found is None:
            raise LookupError(f"no market {market_id}")
        return found

    def is_leader(self, contact_id: int) -> bool:
        """Whether the contact leads a producer group (``contacts.leader_groups`` not empty)."""
        return contact_id in self.catalog.leaders

    def grades_for(self, commodity_id: int) -> list[Grade]:
        """``catalog.grades_for``: the commodity's public grades, best first."""
        return list(self.catalog.grades.get(commodity_id, []))

    def markets_for_country(self, country: str | None, first_id: int | None = None) -> list[Market]:
        """``catalog.markets_for_country``: by name, the market ``first_id`` at the top."""
        markets = [market for market in self.catalog.markets if not country or market.country == country]
        first = next((market for market in markets if market.id == first_id), None)
        if first is not None:
            markets.remove(first)
            markets.insert(0, first)
        return markets

    def commodities_for_country(self, country: str | None, kind: str = "produce") -> list[Commodity]:
        """``catalog.commodities_for_country``: those priced in the country (all if none are), by id."""
        everything = [item for item in self.catalog.commodities if item.kind == kind]
        if not country:
            return everything
        priced = self.facts.priced.get(country)
        if priced is None:
            priced = frozenset(self.session.scalars(sa.select(Commodity.id).where(catalog.priced_in(country))))
            self.facts.priced[country] = priced
        return [item for item in everything if item.id in priced] or everything

    def latest_quote(
        self, commodity: Commodity, market: Market, as_of: dt.date, kind: str = "wholesale"
    ) -> Quote | None:
        """``prices.latest_quote`` of cached rows; the quote holds cached rows too."""
        key = (commodity.id, market.id, kind, as_of)
        if key not in self.facts.quotes:
            self.facts.quotes[key] = prices.latest_quote(
                self.session, self.commodity(commodity.id), self.market(market.id), as_of, kind
            )
        return self.facts.quotes[key]

    def nearby_markets(self, market: Market, radius_km: float) -> list[Market]:
        """``prices.nearby_markets`` from the cached markets (in id order, as a table scan gives them)."""
        key = (market.id, radius_km)
        if key not in self.catalog.nearby:
            by_id = sorted(self.catalog.markets, key=lambda item: item.id)
            self.catalog.nearby[key] = prices.nearest_first(self.market(market.id), by_id, radius_km)
        return self.catalog.nearby[key]

    def best_nearby(self, quote: Quote, settings: Mapping[str, Any], as_of: dt.date) -> Quote | None:
        """``prices.best_nearby`` for a quote of ``latest_quote``: the same answer, computed once."""
        radius = prices.nearby_radius_km(settings)
        key = (quote.commodity.id, quote.market.id, quote.day, quote.amount, as_of, radius,
               prices.price_max_age(quote.commodity, settings))
        if key not in self.facts.best:
            others = self.nearby_markets(quote.market, radius)
            latest = prices.latest_prices(self.session, quote.commodity, others, as_of)
            best = prices.pick_best(quote, others, latest, as_of, settings)
            found = self.latest_quote(quote.commodity, best, as_of) if best is not None else None
            self.facts.best[key] = (
                dataclasses.replace(found, distance_km=prices.distance_km(quote.market, found.market))
                if found is not None else None
            )
        return self.facts.best[key]
