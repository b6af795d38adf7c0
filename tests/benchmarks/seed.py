"""Benchmark data: demo content, 20 markets, farmers with 3 alerts each, open group orders.

Everything past the demo seed is written with core bulk inserts. Farmer ``i`` is fully
determined by ``i`` (country, phone, market, language, crops), and consecutive farmers
differ in all of them, as people enrolling one after another would.
"""
from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field

import sqlalchemy as sa

from smsgw.config import PROJECT_ROOT
from smsgw.db import Database, utcnow
from smsgw.migrate import upgrade
from smsgw.models import (
    Commodity,
    Contact,
    GroupOrder,
    Market,
    Membership,
    ProducerGroup,
    Subscription,
    Unit,
)
from smsgw.services.seeding import seed_demo
from tests.benchmarks.common import log

MARKETS = 20
COUNTRIES = {"KE": ("+25471", ("en", "sw")), "SN": ("+22176", ("fr", "wo"))}
GROUP_SIZE = 50
MAX_GROUPS = 400
CHUNK = 10_000


@dataclass
class World:
    """Ids the load generators need."""

    markets: dict[str, list[int]] = field(default_factory=dict)  # country -> market ids
    crops: dict[str, list[int]] = field(default_factory=dict)  # country -> 4 produce ids
    contacts: int = 0
    group_members: list[str] = field(default_factory=list)  # phones in a group with an open order


def farmer(i: int, world: World) -> dict:
    """Farmer ``i``: country, phone, home market, language and the 3 crops followed."""
    country = "KE" if i % 2 == 0 else "SN"
    prefix, languages = COUNTRIES[country]
    markets, crops = world.markets[country], world.crops[country]
    skip = (i // 40) % len(crops)
    return {
        "country": country,
        "phone": f"{prefix}{i:07d}",
        "market": markets[(i // 2) % len(markets)],
        "language": languages[(i // 20) % 2],
        "crops": [crop for n, crop in enumerate(crops) if n != skip][:3],
    }


def phone(i: int) -> str:
    """Farmer ``i``'s phone number."""
    return f"{COUNTRIES['KE' if i % 2 == 0 else 'SN'][0]}{i:07d}"


def create(url: str, today: dt.date) -> World:
    """Migrate, seed the demo, add markets up to 20; return the world without farmers."""
    log("migrating and seeding the demo content")
    upgrade(url)
    db = Database(url)
    with db.session() as session:
        seed_demo(session, PROJECT_ROOT / "content", today)
    _add_markets(db)
    world = load_world(db)
    db.dispose()
    return world


def load_world(db: Database) -> World:
    """Markets and crops per country as they are in the database."""
    world = World()
    with db.session() as session:
        for country in COUNTRIES:
            world.markets[country] = list(
                session.scalars(sa.select(Market.id).where(Market.country == country).order_by(Market.id))
            )
            priced = sa.text(
                "SELECT DISTINCT commodity_id FROM price_observation p JOIN market m ON m.id = p.market_id WHERE "
                "m.country = :c"
            )
            ids = {row[0] for row in session.execute(priced, {"c": country})}
            world.crops[country] = list(session.scalars(
                sa.select(Commodity.id).where(Commodity.id.in_(ids), Commodity.kind == "produce").order_by(Commodity.id)
            ))[:4]
        world.contacts = session.scalar(
            sa.select(sa.func.count()).select_from(Contact).where(Contact.name.like("Bench %"))
        )
        world.group_members = list(session.scalars(
            sa.select(Contact.phone).join(Membership, Membership.contact_id == Contact.id)
            .join(ProducerGroup, ProducerGroup.id == Membership.group_id)
            .where(ProducerGroup.code.like("bench-%"), Membership.role == "member").order_by(Contact.id)
        ))
    return world


def _add_markets(db: Database) -> None:
    """Clone demo markets (and their price history, a little dearer) up to 20 markets."""
    with db.session() as session:
        demo = {
            country: list(session.scalars(sa.select(Market).where(Market.country == country).order_by(Market.id)))
            for country in COUNTRIES
        }
        total = sum(len(markets) for markets in demo.values())
        extra = {country: (MARKETS - total) // len(COUNTRIES) for country in COUNTRIES}
        for country, count in extra.items():
            for n in range(1, count + 1):
                source = demo[country][(n - 1) % len(demo[country])]
                clone = Market(
                    code=f"bench-{country.lower()}-{n}",
                    name=f"{source.name} {n}",
                    short_name=f"{source.short_name[:15]}{n}",
                    country=country,
                    region=source.region,
                    timezone=source.timezone,
                    currency=source.currency,
                    latitude=(source.latitude or 0) + decimal.Decimal("0.05") * n,
                    longitude=source.longitude,
                    bulletin_hour=source.bulletin_hour,
                )
                session.add(clone)
                session.flush()
                session.execute(
                    sa.text(
                        "INSERT INTO price_observation (commodity_id, market_id, observed_on, amount, unit_id, "
                        "currency,"
                        " price_per_base, kind, source, source_ref, status, status_reason, created_at)"
                        " SELECT commodity_id, :market, observed_on, round(amount * :f, 2), unit_id, currency,"
                        " round(price_per_base * :f, 6), kind, 'bench', source_ref || :suffix, status, '', now()"
                        " FROM price_observation WHERE market_id = :source AND source = 'demo'"
                    ),
                    {
                        "market": clone.id,
                        "f": decimal.Decimal(1) + decimal.Decimal("0.01") * n,
                        "suffix": f":{clone.code}",
                        "source": source.id,
                    },
                )


def add_farmers(url: str, world: World, start: int, stop: int) -> None:
    """Farmers ``start`` to ``stop - 1`` with their 3 alerts each, by core bulk inserts."""
    db = Database(url)
    now = utcnow()
    contact_t, sub_t = Contact.__table__, Subscription.__table__
    for lo in range(start, stop, CHUNK):
        people = [farmer(i, world) for i in range(lo, min(stop, lo + CHUNK))]
        with db.session() as session:
            rows = [
                {
                    "phone": p["phone"],
                    "name": f"Bench {p['phone'][-7:]}",
                    "language": p["language"],
                    "language_chosen": True,
                    "home_market_id": p["market"],
                    "village": "",
                    "consent": "granted",
                    "consented_at": now,
                    "enrolled_at": now - dt.timedelta(days=30),
                    "created_at": now,
                }
                for p in people
            ]
            ids = session.scalars(
                sa.insert(contact_t).returning(contact_t.c.id, sort_by_parameter_order=True), rows
            ).all()
            subs = [{"contact_id": cid, "commodity_id": crop, "market_id": p["market"], "created_at": now}
                    for cid, p in zip(ids, people, strict=True) for crop in p["crops"]]
            session.execute(sa.insert(sub_t), subs)
        log(f"farmers: {min(stop, lo + CHUNK):,} of {stop:,}")
    world.contacts = stop
    db.dispose()


def add_group_orders(url: str, world: World) -> None:
    """Kenyan farmers in groups of 50, each group with one open maize sell order."""
    db = Database(url)
    now = utcnow()
    with db.session() as session:
        maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
        bag = session.scalar(sa.select(Unit).where(Unit.code == "bag90"))
        kenyans = [i for i in range(0, world.contacts, 2)]
        # Two Kenyans in five are in a group: the others report sales and look up prices.
        groups = min(MAX_GROUPS, len(kenyans) * 2 // (GROUP_SIZE * 5))
        wanted = {phone(i) for i in kenyans[: groups * GROUP_SIZE]}
        by_phone = dict(session.execute(sa.select(Contact.phone, Contact.id).where(Contact.phone.in_(wanted))).all())
        for g in range(groups):
            members = [by_phone[phone(i)] for i in kenyans[g * GROUP_SIZE:(g + 1) * GROUP_SIZE]]
            group_id = session.scalar(
                sa.insert(ProducerGroup.__table__).returning(ProducerGroup.id),
                {
                    "code": f"bench-{g}",
                    "name": f"Bench group {g}",
                    "village": "",
                    "market_id": world.markets["KE"][g % len(world.markets["KE"])],
                    "created_at": now,
                },
            )
            session.execute(sa.insert(Membership.__table__), [
                {"group_id": group_id, "contact_id": cid, "role": "leader" if n == 0 else "member", "joined_at": now}
                for n, cid in enumerate(members)
            ])
            session.execute(sa.insert(GroupOrder.__table__), {
                "group_id": group_id, "opened_by_id": members[0], "kind": "sell", "commodity_id": maize.id,
                "target_quantity": decimal.Decimal(100_000), "unit_id": bag.id, "price": decimal.Decimal(4300),
                "currency": "KES", "deadline": now + dt.timedelta(days=30), "status": "open",
                "committed_total": decimal.Decimal(0), "created_at": now,
            })
        session.execute(sa.text("ANALYZE"))
    world.group_members = load_world(db).group_members
    db.dispose()
    log(f"group orders: {groups} groups of {GROUP_SIZE}")


def analyze(url: str) -> None:
    """Fresh planner statistics after bulk loads (autovacuum may not have run yet)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
