"""Sale reports: what a farmer sold, for how much, to whom. The analytics rest on these."""

from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Base, Money, Quantity, utcnow
from smsgw.models.catalog import Commodity, Grade, Market, Unit
from smsgw.models.people import Contact

BUYER_TYPES = ("farm_gate_trader", "market", "group_order", "processor")


class SaleReport(Base):
    """One sale a farmer reported by USSD or SMS, imported from a baseline survey, or seeded."""

    __tablename__ = "sale_report"
    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("price > 0", name="price_positive"),
        sa.CheckConstraint(
            "buyer_type IN ('farm_gate_trader', 'market', 'group_order', 'processor')",
            name="buyer_type_known",
        ),
        sa.CheckConstraint("channel IN ('ussd', 'sms', 'admin', 'seed', 'import')", name="channel_known"),
        sa.Index("ix_sale_report_commodity_date", "commodity_id", "sold_on"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    contact_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("contact.id"))
    commodity_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("commodity.id"))
    grade_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("grade.id"))
    market_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("market.id"))
    quantity: so.Mapped[Quantity]
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("unit.id"))
    # Price received per ``unit``, in ``currency``.
    price: so.Mapped[Money]
    currency: so.Mapped[str] = so.mapped_column(sa.String(3))
    price_per_base: so.Mapped[decimal.Decimal] = so.mapped_column(sa.Numeric(16, 6))
    buyer_type: so.Mapped[str] = so.mapped_column(sa.String(20))
    sold_on: so.Mapped[dt.date]
    group_order_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("group_order.id"))
    channel: so.Mapped[str] = so.mapped_column(sa.String(8))
    # Identifies the USSD step or SMS that created the report, so a repeat adds nothing.
    source_ref: so.Mapped[str | None] = so.mapped_column(sa.String(120), unique=True)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    contact: so.Mapped[Contact] = so.relationship()
    commodity: so.Mapped[Commodity] = so.relationship()
    grade: so.Mapped[Grade | None] = so.relationship()
    market: so.Mapped[Market | None] = so.relationship()
    unit: so.Mapped[Unit] = so.relationship()
