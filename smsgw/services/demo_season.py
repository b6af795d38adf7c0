"""The demo's simulated season: past group orders and farmers' sale reports, loaded once."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.models import (
    Buyer,
    Commitment,
    Commodity,
    Contact,
    Grade,
    GroupOrder,
    Market,
    Membership,
    ProducerGroup,
    SaleReport,
    Unit,
)
from smsgw.phones import normalize_phone
from smsgw.services.settlement import amount_due

DEMO_SOURCE = "demo"


@dataclass(frozen=True)
class Catalog:
    """The demo catalog by content code, as the seeder loaded it."""

    units: dict[str, Unit]
    commodities: dict[str, Commodity]
    buyers: dict[str, Buyer]


def load_season(
    session: so.Session, content: Path, today: dt.date, catalog: Catalog,
    progress: Callable[[str], None],
) -> int:
    """A simulated season of sale reports and group orders, loaded once (all or nothing)."""
    sales_file, orders_file = content / "sales.csv", content / "group_orders.toml"
    demo_sale = (
        sa.select(SaleReport.id).where(SaleReport.source_ref.like(f"{DEMO_SOURCE}:%")).limit(1)
    )
    if not sales_file.exists() or session.scalar(demo_sale):
        return 0
    progress("sale reports and group orders")
    orders = (
        _orders(session, tomllib.loads(orders_file.read_text("utf-8")), today, catalog)
        if orders_file.exists()
        else {}
    )
    with sales_file.open(newline="", encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    phones = {normalize_phone(row["phone"]) for row in lines}
    contacts = {
        c.phone: c
        for c in session.scalars(sa.select(Contact).where(Contact.phone.in_(phones)))
    }
    rows = []
    for number, row in enumerate(lines, start=2):
        contact = contacts[normalize_phone(row["phone"])]
        market = session.get_one(Market, contact.home_market_id)
        unit, price = catalog.units[row["unit"]], decimal.Decimal(row["price"])
        order = orders.get(row.get("group_order_ref") or "")
        rows.append(
            {
                "contact_id": contact.id,
                "commodity_id": catalog.commodities[row["commodity"]].id,
                "market_id": market.id,
                "quantity": decimal.Decimal(row["quantity"]),
                "unit_id": unit.id,
                "price": price,
                "currency": market.currency,
                "price_per_base": (price / unit.factor).quantize(decimal.Decimal("0.000001")),
                "buyer_type": row["buyer_type"],
                "sold_on": today - dt.timedelta(days=int(row["days_ago"])),
                "group_order_id": order.id if order else None,
                "channel": "seed",
                "source_ref": f"{DEMO_SOURCE}:{number}",
                "created_at": utcnow(),
            }
        )
    if rows:
        session.execute(sa.insert(SaleReport), rows)
    return len(rows)


def _orders(
    session: so.Session, data: dict[str, Any], today: dt.date, catalog: Catalog
) -> dict[str, GroupOrder]:
    """Past group sell orders with their commitments, keyed by their ``ref`` in the file."""

    def at(days_ago: int, hour: int) -> dt.datetime:
        return dt.datetime.combine(
            today - dt.timedelta(days=days_ago), dt.time(hour), tzinfo=dt.UTC
        )

    orders = {}
    for item in data.get("order", []):
        group = session.scalars(
            sa.select(ProducerGroup).where(ProducerGroup.code == item["group"])
        ).one()
        leader = session.scalar(
            sa.select(Membership.contact_id).where(
                Membership.group_id == group.id, Membership.role == "leader"
            )
        )
        market = session.get_one(Market, group.market_id)
        unit = catalog.units[item["unit"]]
        fulfilled = item["status"] == "fulfilled"
        commitments = [
            (normalize_phone(c["phone"]), decimal.Decimal(c["quantity"]), c.get("delivered"))
            for c in item["commitments"]
        ]
        settled = fulfilled and "paid_days_ago" in item
        order = GroupOrder(
            group_id=group.id,
            opened_by_id=leader,
            kind="sell",
            commodity_id=catalog.commodities[item["commodity"]].id,
            buyer_id=catalog.buyers[item["buyer"]].id if item.get("buyer") else None,
            target_quantity=decimal.Decimal(item["target"]),
            unit_id=unit.id,
            price=decimal.Decimal(item["price"]),
            currency=market.currency,
            deadline=at(item["deadline_days_ago"], 18),
            status=item["status"],
            committed_total=sum((q for _, q, _ in commitments), decimal.Decimal(0)),
            final_price=decimal.Decimal(item["final_price"]) if fulfilled else None,
            created_at=at(item["opened_days_ago"], 8),
            closed_at=at(item["deadline_days_ago"], 18),
            fulfilled_at=at(item["fulfilled_days_ago"], 12) if fulfilled else None,
            paid_on=today - dt.timedelta(days=item["paid_days_ago"]) if settled else None,
            fee_per_unit=decimal.Decimal(item.get("fee_per_unit", "0")) if settled else None,
            settled_at=at(item["fulfilled_days_ago"], 12) if settled else None,
        )
        session.add(order)
        session.flush()
        for (phone, quantity, delivered), given in zip(commitments, item["commitments"], strict=True):
            contact_id = session.scalar(
                sa.select(Contact.id).where(Contact.phone == phone)
            )
            row = Commitment(
                order_id=order.id,
                contact_id=contact_id,
                quantity=quantity,
                unit_id=unit.id,
                order_quantity=quantity,
                delivered_quantity=decimal.Decimal(delivered)
                if delivered is not None
                else None,
                created_at=order.created_at,
                updated_at=order.created_at,
            )
            if settled and delivered is not None:
                _settle(session, order, row, given, at(item["fulfilled_days_ago"] - 1, 10))
            session.add(row)
        orders[item["ref"]] = order
    session.flush()
    return orders


def _settle(
    session: so.Session, order: GroupOrder, row: Commitment, given: dict[str, Any], when: dt.datetime
) -> None:
    """A settled demo order's member: grade found, payout, payment reference, confirmation."""
    if given.get("grade"):
        row.delivered_grade_id = session.scalars(
            sa.select(Grade.id).where(
                Grade.commodity_id == order.commodity_id, Grade.code == given["grade"], Grade.buyer_id.is_(None)
            )
        ).first()
    row.delivered_at = order.closed_at
    delivered, price = row.delivered_quantity or decimal.Decimal(0), order.final_price or decimal.Decimal(0)
    if delivered:
        row.payout = amount_due(order, delivered, price, order.fee_per_unit or decimal.Decimal(0))
    row.payment_reference = given.get("reference")
    row.paid_at = when if row.payment_reference else None
    row.confirmation = given.get("confirmation")
    row.confirmed_at = when + dt.timedelta(hours=5) if row.confirmation else None
    row.dispute_note = given.get("dispute_note")
