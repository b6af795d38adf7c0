"""Catalog look-ups shared by the USSD menus, SMS keywords and bulletins."""

from __future__ import annotations

import functools

import phonenumbers
import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.models import Commodity, Grade, Market, PriceObservation
from smsgw.services import change_tokens  # noqa: F401  (announces writes of prices and the catalog)


@functools.lru_cache(maxsize=8192)
def country_for_phone(phone: str) -> str | None:
    """The ISO country of an E.164 number (``KE`` for +254...).

    Kept per number: several screens of every USSD hop ask, each parse about 15 µs.
    """
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return None


def commodities_for_country(
    session: so.Session, country: str | None, kind: str = "produce"
) -> list[Commodity]:
    """Commodities priced in ``country``'s markets (all of ``kind`` if none are), by code."""
    query = sa.select(Commodity).where(Commodity.kind == kind).order_by(Commodity.id)
    if country:
        found = session.scalars(query.where(priced_in(country))).all()
        if found:
            return list(found)
    return list(session.scalars(query).all())


def priced_in(country: str) -> sa.ColumnElement[bool]:
    """A condition on ``Commodity``: some price of it (any status) was observed in ``country``.

    An EXISTS per commodity, which the price look-up index answers with one probe per
    market; an ``IN (SELECT commodity_id ...)`` reads every price ever recorded there.
    """
    markets = sa.select(Market.id).where(Market.country == country)
    return (
        sa.select(PriceObservation.id)
        .where(PriceObservation.commodity_id == Commodity.id, PriceObservation.market_id.in_(markets))
        .exists()
    )


def markets_for_country(
    session: so.Session, country: str | None, first: Market | None = None
) -> list[Market]:
    """The country's markets by name, ``first`` (the caller's home market) at the top."""
    query = sa.select(Market).order_by(Market.name)
    if country:
        query = query.where(Market.country == country)
    markets = list(session.scalars(query).all())
    if first is not None and first in markets:
        markets.remove(first)
        markets.insert(0, first)
    return markets


def grades_for(session: so.Session, commodity: Commodity) -> list[Grade]:
    """The commodity's public grades (not buyers' own), best first."""
    return list(
        session.scalars(
            sa.select(Grade)
            .where(Grade.commodity_id == commodity.id, Grade.buyer_id.is_(None))
            .order_by(Grade.rank)
        ).all()
    )
