"""Matching a price file's names to the catalog: markets, commodities, units and grades.

A market is its name *and* its country: Mali's "Marche central" is never Senegal's. A row's
country is its country column, else ``--country``, else the one country using its currency
(KES), else the file's name (wfp_food_prices_sen.csv). A country the file gives (column,
flag or name) scopes the market's name; one read from the currency does not, so a wrong
currency is reported as such. With no country, a name markets of several countries share
is told apart by currency, or the row is rejected.

Commodities match by code, name or alias, case-insensitive. A name with a variety in
parentheses (``Maize (white)``) falls back to its crop when the catalog or the file itself
names the crop (``Maize``); else the variety is a commodity of its own (``Fuel (diesel)`` is
not ``Fuel (kerosene)``). The file is surveyed before its first row, so nothing depends on
the order of its rows: neither the mapping nor a new commodity's name (the file's most
frequent spelling) and default unit (the unit it is most often priced in).

Units match by code or alias, else as a weight or volume measure (``90 KG``, ``500 ML``) by
factor; counted units (``Unit``, ``Bunch``) are rejected. With ``create_missing`` what is not
found is created, and the file's names are recorded as aliases.
"""

from __future__ import annotations

import decimal
import functools
import re
from collections import Counter
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
from smsgw.services.price_files import Row, RowError, Survey, norm


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


@functools.cache
def currency_countries() -> dict[str, frozenset[str]]:
    """The countries using each currency today (Babel's CLDR); a withdrawn one's last users."""
    zones = get_global("territory_zones")
    now: dict[str, set[str]] = {}
    ever: dict[str, set[str]] = {}
    for territory, entries in get_global("territory_currencies").items():
        for code, _start, end, tender in entries:
            if tender and territory in zones:
                ever.setdefault(code, set()).add(territory)
                if end is None:
                    now.setdefault(code, set()).add(territory)
    return {code: frozenset(now.get(code) or users) for code, users in ever.items()}


def currency_country(currency: str) -> str:
    """The one country using ``currency`` (KES: KE), or "" when several (XOF) or none do."""
    users = currency_countries().get(currency, frozenset())
    return next(iter(users)) if len(users) == 1 else ""


def _countries(codes: set[str] | frozenset[str]) -> str:
    listed = sorted(codes)
    return ", ".join(listed[:8]) + (", ..." if len(listed) > 8 else "")


class CatalogMatcher:
    """Matches a file's names to the catalog by code, name and alias; creates on request.

    ``country`` is ``--country`` (an ISO code), ``file_country`` the one the file's name
    gives, ``survey`` what a first pass over the file found (see :mod:`price_files`).
    """

    def __init__(
        self,
        session: so.Session,
        *,
        create_missing: bool,
        country: str = "",
        file_country: str = "",
        survey: Survey | None = None,
    ) -> None:
        self.session = session
        self.create_missing = create_missing
        self.country = country
        self.file_country = file_country
        self.survey = survey or Survey({}, 0)
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
        # Every market a word names, in id order: the same name may be a market of two countries.
        self.markets: dict[str, list[MarketRef]] = {}
        for market in session.scalars(
            sa.select(Market).options(so.selectinload(Market.aliases)).order_by(Market.id)
        ):
            market_ref = MarketRef(market.id, market.name, market.currency, market.country)
            words = {norm(word) for word in [market.code, market.name, *(a.alias for a in market.aliases)]}
            for word in words:
                self.markets.setdefault(word, []).append(market_ref)
        self.commodities: dict[str, int] = {}
        for commodity in session.scalars(
            sa.select(Commodity).options(so.selectinload(Commodity.aliases)).order_by(Commodity.id)
        ):
            words_of = [
                commodity.code,
                *commodity.names.values(),
                *(alias.alias for alias in commodity.aliases),
            ]
            for word in words_of:
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
        # The market each (name, country cell, currency) found, so a file's rows look it up once.
        self.found: dict[tuple[str, str, str], MarketRef] = {}

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

    def country_of(self, row: Row) -> tuple[str, bool]:
        """The row's country, and whether the file gives it (then it scopes the market's name)."""
        if row.country or self.country:
            return row.country or self.country, True
        single = currency_country(row.currency)
        if single:
            return single, False
        return self.file_country, bool(self.file_country)

    def _named(self, key: str) -> list[MarketRef]:
        return self.markets.get(key) or self.markets.get(key.replace(" ", "-")) or []

    def market(self, row: Row) -> MarketRef:
        """The market ``row`` names in its country, created from the row's details when asked."""
        key = norm(row.market)
        known = self.found.get((key, row.country, row.currency))
        if known is not None:
            return known
        if not key:
            raise RowError("the market is empty")
        found = self._market(row, key)
        self.found[key, row.country, row.currency] = found
        return found

    def _market(self, row: Row, key: str) -> MarketRef:
        country, given = self.country_of(row)
        named = self._named(key)
        if given:
            found = next((market for market in named if market.country == country), None)
        else:
            found = self._by_currency(named, row)
        if found is not None:
            return found
        if not self.create_missing:
            elsewhere = f" in {country} (only in {_countries({m.country for m in named})})" if named else ""
            raise RowError(f"unknown market {row.market!r}{elsewhere}")
        if not country:
            advice = "fill its country cell" if "country" in self.survey.columns else "give a country column"
            raise RowError(self.no_country(row.market, row.currency, f"{advice} or --country"))
        users = currency_countries().get(row.currency, frozenset())
        if len(users) == 1 and country not in users:
            owner = _countries(users)
            raise RowError(f"cannot create market {row.market!r} in {country}: {row.currency} is {owner}'s currency")
        return self._new_market(row, key, country)

    @staticmethod
    def _by_currency(named: list[MarketRef], row: Row) -> MarketRef | None:
        """With no country, the market of that name; in several countries, the one of the row's currency."""
        countries = {market.country for market in named}
        if len(countries) <= 1:
            return named[0] if named else None
        same = [market for market in named if market.currency == row.currency]
        if len({market.country for market in same}) != 1:
            raise RowError(
                f"market {row.market!r} is in several countries ({_countries(countries)}):"
                " give a country column or --country"
            )
        return same[0]

    def _new_market(self, row: Row, key: str, country: str) -> MarketRef:
        code = _slug(row.market)
        if code in self.codes[Market]:
            code = f"{code[:37]}-{country.lower()}"  # the same name in another country
        market = Market(
            code=self._code(Market, code),
            name=row.market[:80],
            short_name=row.market[:20].strip(),
            country=country,
            region=row.region[:80],
            timezone=get_global("territory_zones")[country][0],
            currency=row.currency,
            latitude=row.latitude,
            longitude=row.longitude,
        )
        self.session.add(market)
        self.session.flush()
        self._alias(MarketAlias, key, market_id=market.id)
        found = MarketRef(market.id, market.name, market.currency, market.country)
        self.markets.setdefault(key, []).append(found)
        self.found.clear()  # a row without a country may now name two markets
        self.created["markets"].append(market.name)
        return found

    @staticmethod
    def no_country(market: str, currency: str, advice: str) -> str:
        """Why a new market cannot be made: the currency does not tell its country."""
        users = currency_countries().get(currency, frozenset())
        used = f"{currency} is used in {len(users)} countries ({_countries(users)})" if users else (
            f"{currency} is no country's currency"
        )
        return f"no country for new market {market!r}: {used}; {advice}"

    def missing_country(self) -> tuple[int, str] | None:
        """The first line that would make a market in an unknown country, when nothing in the file can tell it.

        Checked before any row is imported: every such row would be rejected alike, so the
        whole file is refused with this one line instead.
        """
        if not self.create_missing or self.country or self.file_country or "country" in self.survey.columns:
            return None
        for (key, currency), (line, name) in self.survey.places.items():
            if key and len(currency_countries().get(currency, ())) > 1 and not self._named(key):
                return line, self.no_country(name, currency, "pass --country (or add a country column)")
        return None

    def _commodity(self, key: str) -> int | None:
        return self.commodities.get(key) or self.commodities.get(key.replace(" ", "-"))

    def commodity(self, raw: str, unit: UnitRef) -> int:
        """The commodity id for ``raw``; a variety falls back to its crop if the catalog or file names it."""
        key = norm(raw)
        found = self._commodity(key)
        if found is not None:
            return found
        if not key:
            raise RowError("the commodity is empty")
        # WFP names a variety in parentheses: the catalog prices the crop, when it knows it.
        target = key
        crop = norm(PARENTHESES.sub(" ", key))
        if crop and crop != key:
            found = self._commodity(crop)
            if crop in self.survey.spellings:
                target = crop  # the file names the crop itself: it is created, whichever row comes first
        if found is None and not self.create_missing:
            raise RowError(f"unknown commodity {raw!r}")
        if found is None:
            found = self._new_commodity(target, raw, unit)
        if self.create_missing:
            self._alias(CommodityAlias, key, commodity_id=found, lang="en")
        self.commodities[key] = found
        return found

    def _new_commodity(self, key: str, raw: str, unit: UnitRef) -> int:
        name = self.survey.spelling(key) or raw.strip()
        commodity = Commodity(
            code=self._code(Commodity, name),
            kind="produce",
            default_unit_id=self._usual_unit(key, unit).id,
            names={"en": name[:60]},
            short_names={"en": name[:20]},
        )
        self.session.add(commodity)
        self.session.flush()
        self.commodities[key] = commodity.id
        self._alias(CommodityAlias, key, commodity_id=commodity.id, lang="en")
        self.created["commodities"].append(name)
        return commodity.id

    def _usual_unit(self, key: str, fallback: UnitRef) -> UnitRef:
        """The unit the file most often prices commodity ``key`` in, its varieties included."""
        counts: Counter[str] = Counter()
        for name, units in self.survey.units.items():
            if name == key or (norm(PARENTHESES.sub(" ", name)) == key and self._commodity(name) is None):
                counts.update(units)
        for text, _count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            try:
                return self.unit(text)
            except RowError:
                continue  # a counted unit (Bunch) or an empty cell
        return fallback

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
