"""The USSD read cache answers as the database does, and sees every committed change.

``services.read_cache`` keeps the catalog and price answers per process; a change is
seen through the tokens of ``services.change_tokens``, which any process that imports
``services.prices`` moves when it commits a write. These tests compare every cached
answer with the uncached service on the seeded demo, and follow changes made by a
separate process, by the hop's own transaction, by a rolled-back one, and by a writer
that bypasses SQLAlchemy (seen once the snapshot's age runs out).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import itertools
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from smsgw.db import Database, utcnow
from smsgw.models import Commodity, Contact, GroupOrder, Market, Membership, PriceObservation, RuntimeState
from smsgw.services import catalog, change_tokens, contacts, prices, read_cache
from tests.support.databases import BACKENDS, fresh_database

TODAY = dt.date.today()
SETTINGS = {"PRICE_NEARBY_KM": 150, "PRICE_MAX_AGE_DAYS": 14}
MEMBER = "+254700000002"
_ids = itertools.count()


def _key(quote: prices.Quote | None) -> tuple | None:
    """What a farmer is told from a quote."""
    if quote is None:
        return None
    return (quote.market.id, quote.commodity.id, quote.unit.id, quote.day, quote.amount, quote.currency,
            quote.week_change_pct, None if quote.distance_km is None else round(quote.distance_km, 6))


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> Iterator[str]:
    """A seeded database of the test's own: these tests commit for real."""
    with fresh_database(tmp_path, request.param) as url:
        yield url


@pytest.fixture()
def database(url: str) -> Iterator[Database]:
    """The application's side: sessions as a web worker opens them."""
    database = Database(url)
    yield database
    database.dispose()


def _maize_in(session, market_code: str) -> tuple[Commodity, Market]:
    maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
    market = session.scalar(sa.select(Market).where(Market.code == market_code))
    return maize, market


def _cached_quote(database: Database, market_code: str) -> prices.Quote | None:
    with database.session() as session:
        maize, market = _maize_in(session, market_code)
        # The day the test's own database was seeded, not the module's: a run may cross midnight.
        return read_cache.reads(session).latest_quote(maize, market, dt.date.today())


def _run_elsewhere(url: str, code: str) -> None:
    """``code`` in another Python process that imported ``services.prices``, as the CLI does."""
    script = textwrap.dedent(f"""
        import datetime
        import sqlalchemy as sa
        import smsgw.services.prices
        from smsgw.db import Database, utcnow
        from smsgw.models import Commodity, Market, PriceObservation
        database = Database({url!r})
        with database.session() as session:
        """) + textwrap.indent(textwrap.dedent(code), "    ") + "\ndatabase.dispose()\n"
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)


def test_every_cached_answer_is_the_databases(session) -> None:
    reads = read_cache.reads(session)
    markets = list(session.scalars(sa.select(Market).order_by(Market.id)))
    crops = list(session.scalars(sa.select(Commodity).order_by(Commodity.id)))
    compared = 0
    for crop in crops:
        assert [g.id for g in reads.grades_for(crop.id)] == [g.id for g in catalog.grades_for(session, crop)]
        for market in markets:
            direct = prices.latest_quote(session, crop, market, TODAY)
            cached = reads.latest_quote(reads.commodity(crop.id), reads.market(market.id), TODAY)
            assert _key(cached) == _key(direct), (crop.code, market.code)
            if direct is None or not prices.quote_is_fresh(direct, TODAY, SETTINGS):
                continue
            expected = prices.best_nearby(session, direct, SETTINGS, as_of=TODAY)
            assert cached is not None
            assert _key(reads.best_nearby(cached, SETTINGS, TODAY)) == _key(expected), (crop.code, market.code)
            compared += 1
    assert compared > 20  # the demo has fresh prices in most markets
    for country in ("KE", "SN", "GH", None):
        for kind in ("produce", "input"):
            assert [c.id for c in reads.commodities_for_country(country, kind)] == [
                c.id for c in catalog.commodities_for_country(session, country, kind)
            ]
        home = next((m for m in reversed(markets) if country is None or m.country == country), None)
        assert [m.id for m in reads.markets_for_country(country, home.id if home else None)] == [
            m.id for m in catalog.markets_for_country(session, country, first=home)
        ]
    for member in session.scalars(sa.select(Membership)):
        assert reads.is_leader(member.contact_id) == bool(contacts.leader_groups(session, member.contact))


def test_a_price_changed_by_another_process_is_seen_at_the_next_hop(url: str, database: Database) -> None:
    before = _cached_quote(database, "eldoret")
    assert before is not None
    # An update in place: no new row, so only the token can tell.
    _run_elsewhere(url, f"""
        maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
        eldoret = session.scalar(sa.select(Market).where(Market.code == "eldoret"))
        session.execute(sa.update(PriceObservation).where(
            PriceObservation.commodity_id == maize.id, PriceObservation.market_id == eldoret.id,
            PriceObservation.observed_on == {before.day!r}).values(price_per_base=PriceObservation.price_per_base * 2))
    """)
    after = _cached_quote(database, "eldoret")
    assert after is not None and after.amount == pytest.approx(before.amount * 2, abs=decimal.Decimal("0.02"))


def test_a_market_renamed_by_another_process_is_seen_at_the_next_hop(url: str, database: Database) -> None:
    with database.session() as session:
        market_id = read_cache.reads(session).markets_for_country("KE")[0].id
    _run_elsewhere(url, f"""
        session.get(Market, {market_id}).name = "Renamed Market"
    """)
    with database.session() as session:
        assert read_cache.reads(session).market(market_id).name == "Renamed Market"


def test_a_transaction_reads_its_own_uncommitted_writes(database: Database) -> None:
    with database.session() as session:
        market = read_cache.reads(session).markets_for_country("KE")[0]
        session.execute(sa.update(Market).where(Market.id == market.id).values(name="Not Yet Committed"))
        assert read_cache.reads(session).market(market.id).name == "Not Yet Committed"
        assert change_tokens.uncommitted(session.connection()) == {change_tokens.CATALOG}
        session.rollback()
        assert read_cache.reads(session).market(market.id).name == market.name
        session.get(Market, market.id).name = "Not Yet Flushed"
        assert read_cache.reads(session).market(market.id).name == "Not Yet Flushed"
        session.rollback()


def test_a_rolled_back_write_changes_no_token(database: Database) -> None:
    def tokens() -> dict[str, str]:
        with database.session() as session:
            return {row.name: row.value for row in session.scalars(sa.select(RuntimeState))}

    with database.session() as session:
        session.execute(sa.update(Market).values(bulletin_hour=Market.bulletin_hour))
    committed = tokens()
    assert change_tokens.CATALOG in committed
    with database.engine.connect() as connection:
        connection.execute(sa.update(Market).values(bulletin_hour=Market.bulletin_hour))
        assert change_tokens.uncommitted(connection) == {change_tokens.CATALOG}
        connection.rollback()
        assert change_tokens.uncommitted(connection) == set()
    assert tokens() == committed


def test_a_price_approved_elsewhere_reaches_the_price_screen(url: str, database: Database) -> None:
    with database.session() as session:
        maize, market = _maize_in(session, "nakuru")
        day = session.scalar(sa.select(sa.func.max(PriceObservation.observed_on)).where(
            PriceObservation.commodity_id == maize.id, PriceObservation.market_id == market.id))
        unit = maize.default_unit
        held = PriceObservation(
            commodity_id=maize.id, market_id=market.id, observed_on=day, amount=decimal.Decimal(90000),
            unit_id=unit.id, currency=market.currency, price_per_base=decimal.Decimal(90000) / unit.factor,
            kind="wholesale", source="test", status="pending",
        )
        session.add(held)
        session.flush()
        held_id = held.id
    pending = _cached_quote(database, "nakuru")
    assert pending is not None and pending.day == day
    _run_elsewhere(url, f"""
        session.get(PriceObservation, {held_id}).status = "approved"
    """)
    approved = _cached_quote(database, "nakuru")
    assert approved is not None and approved.day == day and approved.amount > pending.amount


def test_a_write_behind_sqlalchemys_back_is_seen_once_the_snapshot_is_old(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_database(tmp_path, "sqlite") as url:
        database = Database(url)
        try:
            with database.session() as session:
                market = read_cache.reads(session).markets_for_country("KE")[0]
            with contextlib.closing(sqlite3.connect(sa.make_url(url).database)) as raw:
                raw.execute("UPDATE market SET name = 'Edited In The Shell' WHERE id = ?", (market.id,))
                raw.commit()
            with database.session() as session:
                assert read_cache.reads(session).market(market.id).name == market.name  # still cached
            monkeypatch.setattr(read_cache, "MAX_AGE_SECONDS", 0.0)
            with database.session() as session:
                assert read_cache.reads(session).market(market.id).name == "Edited In The Shell"
        finally:
            database.dispose()


def _statements(app) -> list[str]:
    seen: list[str] = []
    event.listen(app.extensions["smsgw.db"].engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: seen.append(statement))
    return seen


def _hops(client, phone: str, *inputs: str) -> list[str]:
    session_id = f"cache-{next(_ids)}"
    return [
        client.post("/at/ussd", data={"sessionId": session_id, "phoneNumber": phone,
                                      "text": "*".join(inputs[:depth])}).get_data(as_text=True)
        for depth in range(len(inputs) + 1)
    ]


def test_a_price_looked_up_again_reads_no_price(app, client) -> None:
    first = _hops(client, "+254700000001", "1", "1", "2")[-1]
    seen = _statements(app)
    again = _hops(client, "+254700000001", "1", "1", "2")[-1]
    assert "KSh" in first and again == first
    assert not [s for s in seen if "price_observation" in s and "max(price_observation.id)" not in s], seen


def _open_order(session, phone: str) -> GroupOrder:
    """A new open sell order of maize in the group of the member with this phone."""
    member = session.scalar(sa.select(Contact).where(Contact.phone == phone))
    group_id = session.scalar(sa.select(Membership.group_id).where(Membership.contact_id == member.id))
    leader_id = session.scalar(sa.select(Membership.contact_id).where(
        Membership.group_id == group_id, Membership.role == "leader"))
    maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
    order = GroupOrder(
        group_id=group_id, opened_by_id=leader_id, kind="sell", commodity_id=maize.id,
        target_quantity=decimal.Decimal(500), unit_id=maize.default_unit_id, price=decimal.Decimal(4300),
        currency="KES", deadline=utcnow() + dt.timedelta(days=14), status="open", committed_total=decimal.Decimal(0),
    )
    session.add(order)
    session.commit()
    return order


def test_a_list_choice_keeps_the_item_the_caller_saw(client, session) -> None:
    chosen = _open_order(session, MEMBER)
    session_id = f"cache-{next(_ids)}"

    def hop(text: str) -> str:
        return client.post("/at/ussd", data={"sessionId": session_id, "phoneNumber": MEMBER, "text": text}
                           ).get_data(as_text=True)

    hop("")
    assert f"1 #{chosen.id} " in hop("3")
    assert f" {chosen.id} " in hop("3*1")
    # A newer order now heads the list: a replay that read the list again would take
    # the caller's "1" for it.
    newer = _open_order(session, MEMBER)
    assert f"1 #{newer.id} " in _hops(client, MEMBER, "3")[-1]
    quantity = hop("3*1*1")
    assert f" {chosen.id}?" in quantity and str(newer.id) not in quantity, quantity
