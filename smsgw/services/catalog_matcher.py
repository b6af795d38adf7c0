"""Matching a price file's names to the catalog: markets, commodities, units and grades.

Markets and commodities match by code, name or alias, case-insensitive; a commodity name
with a variety in parentheses (``Maize (white)``) falls back to the plain name. Units match
by code or alias, else as a weight or volume measure (``90 KG``, ``500 ML``) by factor;
counted units (``Unit``, ``Bunch``) are rejected. With ``create_missing`` what is not found
is created, and the file's names are recorded as aliases.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
import sqlalchemy.orm as so
from babel.core import get_global

from smsgw.db import Base
from smsgw.models import (
    Commodity,
    CommodityAlias,
    Grade,
    Market,
    MarketAlias,
    Unit,
    UnitAlias,
)
from smsgw.services.price_files import Row, RowError, norm


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


def _country_zones() -> tuple[Mapping[str, list[str]], dict[str, set[str]]]:
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
            market_ref = MarketRef(market.id, market.name, market.currency, market.country)
            for word in [market.code, market.name, *(alias.alias for alias in market.aliases)]:
                self.markets.setdefault(norm(word), market_ref)
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
        self.codes: dict[type[Base], set[str]] = {
            Market: set(session.scalars(sa.select(Market.code))),
            Commodity: set(session.scalars(sa.select(Commodity.code))),
            Unit: set(session.scalars(sa.select(Unit.code))),
        }
        self.aliases: dict[type[Base], set[str]] = {
            MarketAlias: set(session.scalars(sa.select(MarketAlias.alias))),
            CommodityAlias: set(session.scalars(sa.select(CommodityAlias.alias))),
            UnitAlias: set(session.scalars(sa.select(UnitAlias.alias))),
        }
        self.grades: dict[int, dict[str, int]] = {}

    def _code(self, model: type[Base], name: str) -> str:
        base, number = _slug(name), 1
        code = base
        while code in self.codes[model]:
            number += 1
            code = f"{base[:36]}-{number}"
        self.codes[model].add(code)
        return code

    def _alias(self, model: type[Base], word: str, **owner: object) -> None:
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
