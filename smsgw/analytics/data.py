"""Frames for the analytics, read from the database with one SELECT each (no ORM objects).

Every loader returns the same columns the analytics accept from other sources (the real
CSV series are fed in the same shape), so nothing downstream knows where rows came from.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from smsgw.models import (
    Commitment,
    Commodity,
    CommodityAlias,
    Contact,
    GroupOrder,
    InboundMessage,
    Market,
    Membership,
    OutboundMessage,
    PriceObservation,
    ProducerGroup,
    SaleReport,
    Subscription,
    Unit,
    UssdSession,
)
from smsgw.models.catalog import Grade

# Money and quantities are Numeric (Decimal) in the database; the analytics work in floats.
_F = sa.Float


# Rows come through a server-side cursor where the driver has one (PostgreSQL), a chunk at a
# time: a million sale reports never sit in memory as Python rows all at once, only as frames.
CHUNK_ROWS = 100_000


def _read(conn: sa.Connection, query: sa.Select) -> pd.DataFrame:
    chunks = pd.read_sql(query.execution_options(stream_results=True), conn, chunksize=CHUNK_ROWS)
    frame = pd.concat(chunks, ignore_index=True)
    if frame.empty:
        # No rows: every column would be "object", and merging it with a typed column of
        # another frame fails (pandas MergeError). Give each the dtype its rows would have.
        return frame.astype({column.name: _dtype(column.type) for column in query.selected_columns
                             if column.name in frame})
    return frame


def _dtype(kind: sa.types.TypeEngine[object]) -> str:
    """The pandas dtype read_sql gives a non-empty column of this SQL type."""
    if isinstance(kind, sa.Boolean):
        return "bool"
    if isinstance(kind, sa.Integer):
        return "int64"
    if isinstance(kind, sa.Float | sa.Numeric):
        return "float64"
    if isinstance(kind, sa.DateTime | sa.Date):
        return "datetime64[ns]"
    if isinstance(kind, sa.String):
        return "str"
    return "object"


def _days(column: pd.Series) -> pd.Series:
    return pd.to_datetime(column).astype("datetime64[ns]").dt.normalize()


def find_commodities(conn: sa.Connection, text: str) -> pd.DataFrame:
    """Commodities whose code, name (any language) or alias equals ``text`` (any case)."""
    wanted = text.strip().lower()
    rows = _read(conn, sa.select(Commodity.id, Commodity.code, Commodity.names))
    aliases = _read(conn, sa.select(CommodityAlias.commodity_id, CommodityAlias.alias))
    by_alias = set(aliases.loc[aliases["alias"].str.lower() == wanted, "commodity_id"])
    names = rows["names"].map(lambda names: {str(v).lower() for v in (names or {}).values()})
    hit = (rows["code"].str.lower() == wanted) | rows["id"].isin(by_alias) | names.map(lambda s: wanted in s)
    return rows.loc[hit, ["id", "code"]].reset_index(drop=True)


def load_markets(conn: sa.Connection) -> pd.DataFrame:
    """Markets with their place, region and currency."""
    query = sa.select(
        Market.id.label("market_id"), Market.code.label("market"), Market.name, Market.region,
        Market.country, Market.currency, sa.cast(Market.latitude, _F).label("latitude"),
        sa.cast(Market.longitude, _F).label("longitude"),
    )
    return _read(conn, query)


def load_prices(
    conn: sa.Connection, *, kind: str = "wholesale", commodity_ids: list[int] | None = None,
    since: dt.date | None = None, until: dt.date | None = None, every_status: bool = False,
) -> pd.DataFrame:
    """Approved observations of ``kind`` as (day, market, commodity, grade, price per base unit).

    ``every_status``: held and rejected ones too, with their ``status`` and ``status_reason``
    (a report counts and names the rows it leaves out).
    """
    extra = [PriceObservation.status, PriceObservation.status_reason] if every_status else []
    query = (
        sa.select(
            PriceObservation.observed_on.label("day"), Market.code.label("market"),
            Commodity.code.label("commodity"), sa.func.coalesce(Grade.code, "").label("grade"),
            sa.cast(PriceObservation.price_per_base, _F).label("price"), PriceObservation.currency,
            Unit.base, PriceObservation.kind, *extra,
        )
        .join(Market, Market.id == PriceObservation.market_id)
        .join(Commodity, Commodity.id == PriceObservation.commodity_id)
        .join(Unit, Unit.id == PriceObservation.unit_id)
        .outerjoin(Grade, Grade.id == PriceObservation.grade_id)
        .where(PriceObservation.kind == kind)
    )
    if not every_status:
        query = query.where(PriceObservation.status == "approved")
    if commodity_ids is not None:
        query = query.where(PriceObservation.commodity_id.in_(commodity_ids))
    if since is not None:
        query = query.where(PriceObservation.observed_on >= since)
    if until is not None:
        query = query.where(PriceObservation.observed_on <= until)
    frame = _read(conn, query)
    frame["day"] = _days(frame["day"])
    return frame


def load_held(conn: sa.Connection, *, kind: str = "wholesale", commodity_ids: list[int] | None = None,
              since: dt.date | None = None) -> pd.DataFrame:
    """Prices of ``kind`` not approved: (commodity, status, rows), for the rows-excluded counts."""
    query = (
        sa.select(Commodity.code.label("commodity"), PriceObservation.status, sa.func.count().label("rows"))
        .join(Commodity, Commodity.id == PriceObservation.commodity_id)
        .where(PriceObservation.kind == kind, PriceObservation.status != "approved")
        .group_by(Commodity.code, PriceObservation.status)
    )
    if commodity_ids is not None:
        query = query.where(PriceObservation.commodity_id.in_(commodity_ids))
    if since is not None:
        query = query.where(PriceObservation.observed_on >= since)
    return _read(conn, query)


def served_markets(conn: sa.Connection) -> set[str]:
    """Markets the service serves: a farmer's home market, a subscription's or a sale's market."""
    real = Contact.simulated.is_(False)
    homes = sa.select(Market.code).join(Contact, Contact.home_market_id == Market.id).where(real)
    subscribed = sa.select(Market.code).join(Subscription, Subscription.market_id == Market.id)
    sold = sa.select(Market.code).join(SaleReport, SaleReport.market_id == Market.id)
    return {str(code) for query in (homes, subscribed, sold) for code in conn.execute(query.distinct()).scalars()}


def _real(contact_id: sa.ColumnExpressionArgument[int | None]) -> sa.ColumnElement[bool]:
    """Not a contact of the admin's phone simulator (their activity is not the farmers')."""
    return ~sa.exists().where(Contact.id == contact_id, Contact.simulated.is_(True))


def load_people(conn: sa.Connection) -> pd.DataFrame:
    """Contacts with their first producer group, village, home market and enrolment day."""
    contacts = _read(conn, sa.select(
        Contact.id.label("farmer"), Contact.village, Contact.enrolled_at, Contact.consent,
        Market.code.label("home_market"),
    ).outerjoin(Market, Market.id == Contact.home_market_id).where(Contact.simulated.is_(False)))
    groups = _read(conn, sa.select(
        Membership.contact_id.label("farmer"), ProducerGroup.code.label("group"),
        ProducerGroup.village.label("group_village"),
    ).join(ProducerGroup, ProducerGroup.id == Membership.group_id).order_by(Membership.id))
    groups = groups.drop_duplicates("farmer", keep="first")
    people = contacts.merge(groups, on="farmer", how="left")
    people["group"] = people["group"].fillna("")
    people["village"] = people["village"].where(people["village"] != "", people["group_village"]).fillna("")
    enrolled = pd.to_datetime(people["enrolled_at"], utc=True)
    people["enrolled"] = enrolled.dt.tz_localize(None).astype("datetime64[ns]").dt.normalize()
    return people.drop(columns=["enrolled_at", "group_village"])


def load_sales(
    conn: sa.Connection, *, commodity_ids: list[int] | None = None, since: dt.date | None = None,
) -> pd.DataFrame:
    """Sale reports as (sale_id, day, farmer, commodity, grade, market, quantity and price per base unit)."""
    query = (
        sa.select(
            SaleReport.id.label("sale_id"), SaleReport.sold_on.label("day"),
            SaleReport.contact_id.label("farmer"), Commodity.code.label("commodity"),
            sa.func.coalesce(Grade.code, "").label("grade"), Market.code.label("market"),
            (sa.cast(SaleReport.quantity, _F) * sa.cast(Unit.factor, _F)).label("quantity"),
            sa.cast(SaleReport.price_per_base, _F).label("price"), SaleReport.currency, Unit.base,
            SaleReport.buyer_type, SaleReport.group_order_id.label("group_order"),
        )
        .join(Commodity, Commodity.id == SaleReport.commodity_id)
        .join(Unit, Unit.id == SaleReport.unit_id)
        .outerjoin(Market, Market.id == SaleReport.market_id)
        .outerjoin(Grade, Grade.id == SaleReport.grade_id)
        .where(_real(SaleReport.contact_id))
    )
    if commodity_ids is not None:
        query = query.where(SaleReport.commodity_id.in_(commodity_ids))
    if since is not None:
        query = query.where(SaleReport.sold_on >= since)
    frame = _read(conn, query)
    frame["day"] = _days(frame["day"])
    frame["market"] = frame["market"].fillna("")
    frame["group_order"] = frame["group_order"].astype("Int64")
    return frame


def load_orders(conn: sa.Connection, *, commodity_ids: list[int] | None = None) -> pd.DataFrame:
    """Sell orders past their close, with agreed and final price per base unit and quantities.

    A settled order (services.settlement) has its final price, each member's delivered
    quantity and the day the buyer paid: its premium is measured against that day's reference.
    """
    committed = (
        sa.select(
            Commitment.order_id,
            sa.func.sum(sa.cast(Commitment.order_quantity, _F)).label("committed"),
            sa.func.sum(sa.cast(sa.func.coalesce(Commitment.delivered_quantity, 0), _F)).label("delivered"),
            sa.func.count().label("members"),
        ).group_by(Commitment.order_id).subquery()
    )
    query = (
        sa.select(
            GroupOrder.id.label("order_id"), GroupOrder.status, ProducerGroup.code.label("group"),
            Market.code.label("market"), Commodity.code.label("commodity"),
            sa.func.coalesce(Grade.code, "").label("grade"), GroupOrder.currency, Unit.base,
            (sa.cast(GroupOrder.price, _F) / sa.cast(Unit.factor, _F)).label("agreed_price"),
            (sa.cast(GroupOrder.final_price, _F) / sa.cast(Unit.factor, _F)).label("price"),
            (sa.func.coalesce(committed.c.committed, 0) * sa.cast(Unit.factor, _F)).label("committed"),
            (sa.func.coalesce(committed.c.delivered, 0) * sa.cast(Unit.factor, _F)).label("quantity"),
            sa.func.coalesce(committed.c.members, 0).label("members"),
            GroupOrder.created_at, GroupOrder.fulfilled_at, GroupOrder.closed_at, GroupOrder.paid_on,
            GroupOrder.settled_at.is_not(None).label("settled"),
        )
        .join(ProducerGroup, ProducerGroup.id == GroupOrder.group_id)
        .outerjoin(Market, Market.id == ProducerGroup.market_id)
        .join(Commodity, Commodity.id == GroupOrder.commodity_id)
        .join(Unit, Unit.id == GroupOrder.unit_id)
        .outerjoin(Grade, Grade.id == GroupOrder.grade_id)
        .outerjoin(committed, committed.c.order_id == GroupOrder.id)
        .where(GroupOrder.kind == "sell", GroupOrder.status.in_(("closed", "fulfilled", "cancelled")))
    )
    if commodity_ids is not None:
        query = query.where(GroupOrder.commodity_id.in_(commodity_ids))
    frame = _read(conn, query)
    for column in ("created_at", "fulfilled_at", "closed_at"):
        stamp = pd.to_datetime(frame[column], utc=True).dt.tz_localize(None)
        frame[column] = stamp.astype("datetime64[ns]").dt.normalize()
    # The reference of an order is taken on the day the buyer paid (a settled order's
    # ``paid_on``), else the day it was fulfilled, else closed.
    frame["paid_on"] = pd.to_datetime(frame["paid_on"]).astype("datetime64[ns]")
    frame["day"] = frame["paid_on"].fillna(frame["fulfilled_at"]).fillna(frame["closed_at"])
    frame["settled"] = frame["settled"].astype(bool)
    frame["market"] = frame["market"].fillna("")
    return frame


def load_members(conn: sa.Connection) -> pd.DataFrame:
    """Which contacts committed to which order (to find members' own sales)."""
    return _read(conn, sa.select(Commitment.order_id, Commitment.contact_id.label("farmer"))
                 .where(_real(Commitment.contact_id)))


def load_engagement(conn: sa.Connection, since: dt.date | None = None) -> dict[str, pd.DataFrame]:
    """Inbound SMS, outbound messages, USSD sessions, subscriptions and aliases for engagement."""
    start = dt.datetime.combine(since or dt.date(1970, 1, 1), dt.time(), tzinfo=dt.UTC)
    inbound = _read(conn, sa.select(
        InboundMessage.contact_id.label("farmer"), InboundMessage.received_at.label("at"),
        InboundMessage.command, InboundMessage.text,
    ).where(InboundMessage.received_at >= start, InboundMessage.simulated.is_(False)))
    outbound = _read(conn, sa.select(
        OutboundMessage.contact_id.label("farmer"), OutboundMessage.created_at.label("at"),
        OutboundMessage.purpose, OutboundMessage.status,
    ).where(OutboundMessage.created_at >= start, OutboundMessage.status != "simulated"))
    ussd = _read(conn, sa.select(
        UssdSession.contact_id.label("farmer"), UssdSession.started_at.label("at"),
        UssdSession.status, UssdSession.state,
    ).where(UssdSession.started_at >= start, _real(UssdSession.contact_id)))
    subscriptions = _read(conn, sa.select(
        Subscription.contact_id.label("farmer"), Commodity.code.label("commodity"),
    ).join(Commodity, Commodity.id == Subscription.commodity_id).where(_real(Subscription.contact_id)))
    aliases = _read(conn, sa.select(CommodityAlias.alias, Commodity.code.label("commodity"))
                    .join(Commodity, Commodity.id == CommodityAlias.commodity_id))
    codes = _read(conn, sa.select(Commodity.code.label("alias"), Commodity.code.label("commodity")))
    for frame in (inbound, outbound, ussd):
        frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.tz_localize(None).astype("datetime64[ns]")
        frame["day"] = frame["at"].dt.normalize()
        frame["farmer"] = frame["farmer"].astype("Int64")
    return {
        "inbound": inbound, "outbound": outbound, "ussd": ussd, "subscriptions": subscriptions,
        "aliases": pd.concat([aliases, codes], ignore_index=True).drop_duplicates("alias"),
    }
