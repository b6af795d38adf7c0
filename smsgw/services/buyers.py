"""Registered buyers and input suppliers: who they are, where they buy, in what currency.

A buyer speaks through one contact (its phone): that contact posts offers by SMS and is
told when a group takes one. A buyer's country and currency bound its offers: only groups
of that country, paying in that currency, may take them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.models import Buyer, Contact, Market
from smsgw.services import contacts

BUYER_KINDS = ("trader", "processor", "exporter", "wholesaler", "cooperative", "supplier")
_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class BuyerError(ValueError):
    """A buyer that cannot be registered; the message says why."""


def register_buyer(
    session: so.Session,
    *,
    code: str,
    name: str,
    kind: str,
    phone: str,
    country: str,
    currency: str,
    markets: Sequence[Market],
    language: str = "en",
) -> Buyer:
    """Create or update the buyer ``code``; its phone becomes (or finds) its contact.

    Every market must be in ``country`` and priced in ``currency``.
    """
    code, name = code.strip().lower(), name.strip()
    country, currency = country.strip().upper(), currency.strip().upper()
    if not _CODE.fullmatch(code):
        raise BuyerError("the code is lowercase letters, digits and dashes")
    if not name:
        raise BuyerError("the name is empty")
    if kind not in BUYER_KINDS:
        raise BuyerError(f"kind must be one of {', '.join(BUYER_KINDS)}")
    if not re.fullmatch(r"[A-Z]{2}", country) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise BuyerError("country is two letters (KE), currency three (KES)")
    if not markets:
        raise BuyerError("a buyer serves at least one market")
    for market in markets:
        if market.country != country or market.currency != currency:
            raise BuyerError(f"market {market.code} is not in {country} or not priced in {currency}")
    contact = contacts.get_or_create_contact(session, phone, language)
    other = session.scalar(sa.select(Buyer).where(Buyer.contact_id == contact.id, Buyer.code != code))
    if other is not None:
        raise BuyerError(f"{phone} already speaks for buyer {other.code}")
    buyer = session.scalar(sa.select(Buyer).where(Buyer.code == code))
    if buyer is None:
        buyer = Buyer(code=code)
        session.add(buyer)
    buyer.name, buyer.kind, buyer.phone = name, kind, phone
    buyer.country, buyer.currency, buyer.contact_id, buyer.active = country, currency, contact.id, True
    buyer.market_id = markets[0].id
    buyer.markets = list(markets)
    session.flush()
    return buyer


def buyer_for_contact(session: so.Session, contact: Contact | None) -> Buyer | None:
    """The active buyer this contact speaks for, if any."""
    if contact is None:
        return None
    return session.scalar(
        sa.select(Buyer).where(Buyer.contact_id == contact.id, Buyer.active.is_(True)).order_by(Buyer.id)
    )


def list_buyers(session: so.Session) -> list[Buyer]:
    """Every buyer and supplier, by country and name."""
    return list(session.scalars(sa.select(Buyer).order_by(Buyer.country, Buyer.name, Buyer.id)).all())


def buyer_country(buyer: Buyer) -> str | None:
    """The buyer's country: its own, else its market's."""
    return buyer.country or (buyer.market.country if buyer.market else None)


def buyer_currency(buyer: Buyer) -> str | None:
    """The buyer's currency: its own, else its market's."""
    return buyer.currency or (buyer.market.currency if buyer.market else None)
