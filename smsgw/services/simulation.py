"""The admin's phone simulator plays as numbers from a reserved range by default.

Each allowed country prefix has a block of 100 reserved mobile numbers (``+254 709 9999
00``-``99`` in Kenya, ``+221 70 999 99 00``-``99`` in Senegal). Their contacts are marked
``simulated``: what is queued for them takes the final state ``simulated`` and never
reaches the gateway, their messages are marked too, and analytics leave them out. Playing
as a real contact is possible, but only as an explicit, audited choice of the operator.
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.models import Contact
from smsgw.phones import SIMULATOR_BLOCKS, is_simulator_number

# Country prefix -> the reserved block's first 10 digits after "+" (two more make the number).


def simulated_phone(prefix: str = "+254", slot: int = 1) -> str:
    """Reserved number ``slot`` (0-99) of the country with ``prefix``."""
    if prefix not in SIMULATOR_BLOCKS or not 0 <= slot <= 99:
        raise ValueError(f"no reserved simulator number {slot} for {prefix}")
    return f"{SIMULATOR_BLOCKS[prefix]}{slot:02d}"


def default_phone(allowed_prefixes: str) -> str:
    """The first reserved number of the first allowed country that has a block."""
    for prefix in (p.strip() for p in allowed_prefixes.split(",")):
        if prefix in SIMULATOR_BLOCKS:
            return simulated_phone(prefix, 1)
    return simulated_phone("+254", 1)


def simulated_contact(db: so.Session, phone: str) -> Contact:
    """The simulated contact of a reserved number, created (or marked) on first use."""
    if not is_simulator_number(phone):
        raise ValueError(f"{phone} is not a reserved simulator number")
    contact = db.scalar(sa.select(Contact).where(Contact.phone == phone))
    if contact is None:
        contact = Contact(phone=phone, name="Simulated farmer", simulated=True)
        db.add(contact)
        db.flush()
    elif not contact.simulated:
        contact.simulated = True
    return contact

