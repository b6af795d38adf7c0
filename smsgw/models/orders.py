"""Group orders: a group sells produce or buys inputs as one, members commit quantities."""

from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Base, Money, Quantity, utcnow
from smsgw.models.catalog import Commodity, Grade, Market, Unit
from smsgw.models.people import Buyer, Contact, ProducerGroup

ORDER_KINDS = ("sell", "buy")
ORDER_STATUSES = ("open", "closed", "fulfilled", "cancelled")


class BuyOffer(Base):
    """A buyer's standing offer (``buy``: this much of a commodity and grade at a price), or
    a supplier's quote for inputs (``supply``).

    ``pending`` waits for its buyer's confirmation (a price far from the market's), ``open``
    can be taken, ``closed`` is used up or past its window, ``withdrawn`` by the buyer.
    Orders taken against it reserve their quantity: ``reserved_quantity`` never exceeds
    ``quantity``.
    """

    __tablename__ = "buy_offer"
    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("price > 0", name="price_positive"),
        sa.CheckConstraint("window_end >= window_start", name="window_order"),
        sa.CheckConstraint("status IN ('pending', 'open', 'closed', 'withdrawn')", name="status_known"),
        sa.CheckConstraint("kind IN ('buy', 'supply')", name="kind_known"),
        sa.CheckConstraint("reserved_quantity >= 0 AND reserved_quantity <= quantity", name="reserved_within_quantity"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    buyer_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("buyer.id"))
    commodity_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("commodity.id"))
    grade_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("grade.id"))
    quantity: so.Mapped[Quantity]
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("unit.id"))
    price: so.Mapped[Money]
    currency: so.Mapped[str] = so.mapped_column(sa.String(3))
    delivery_place: so.Mapped[str] = so.mapped_column(sa.String(120), default="")
    window_start: so.Mapped[dt.date]
    window_end: so.Mapped[dt.date]
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="open")
    kind: so.Mapped[str] = so.mapped_column(sa.String(6), default="buy", server_default="buy")
    # Where the buyer takes delivery (the matching of groups is by distance from it).
    market_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("market.id"))
    reserved_quantity: so.Mapped[Quantity] = so.mapped_column(default=decimal.Decimal(0), server_default="0")
    withdrawn_at: so.Mapped[dt.datetime | None]
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    buyer: so.Mapped[Buyer] = so.relationship()
    market: so.Mapped[Market | None] = so.relationship()
    commodity: so.Mapped[Commodity] = so.relationship()
    grade: so.Mapped[Grade | None] = so.relationship()
    unit: so.Mapped[Unit] = so.relationship()


class GroupOrder(Base):
    """A group's collective sale of produce or purchase of inputs."""

    __tablename__ = "group_order"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('sell', 'buy')", name="kind_known"),
        sa.CheckConstraint(
            "status IN ('open', 'closed', 'fulfilled', 'cancelled', 'draft')", name="status_known"
        ),
        sa.CheckConstraint("target_quantity > 0", name="target_positive"),
        sa.CheckConstraint("price IS NULL OR price > 0", name="price_positive"),
        sa.Index("ix_group_order_group_status", "group_id", "status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    group_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("producer_group.id"))
    opened_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("contact.id"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(4))
    commodity_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("commodity.id"))
    grade_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("grade.id"))
    buyer_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("buyer.id"))
    offer_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("buy_offer.id"))
    target_quantity: so.Mapped[Quantity]
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("unit.id"))
    # Offer price (sell) or target price (buy), per order unit.
    price: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(14, 2))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3))
    deadline: so.Mapped[dt.datetime]
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="open")
    # Running sum of commitments in the order's unit, kept in the same transaction as
    # every commit so totals never drift from the rows they sum.
    committed_total: so.Mapped[Quantity] = so.mapped_column(default=decimal.Decimal(0))
    final_price: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(14, 2))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    closed_at: so.Mapped[dt.datetime | None]
    fulfilled_at: so.Mapped[dt.datetime | None]
    # Settlement: the day the buyer paid the group, the group's fee per order unit kept
    # from each payout, and when the payouts were computed and the statements sent.
    paid_on: so.Mapped[dt.date | None]
    fee_per_unit: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(14, 2))
    settled_at: so.Mapped[dt.datetime | None]

    group: so.Mapped[ProducerGroup] = so.relationship()
    opened_by: so.Mapped[Contact] = so.relationship()
    commodity: so.Mapped[Commodity] = so.relationship()
    grade: so.Mapped[Grade | None] = so.relationship()
    buyer: so.Mapped[Buyer | None] = so.relationship()
    offer: so.Mapped[BuyOffer | None] = so.relationship()
    unit: so.Mapped[Unit] = so.relationship()
    commitments: so.Mapped[list[Commitment]] = so.relationship(back_populates="order")
    price_tiers: so.Mapped[list[OrderPriceTier]] = so.relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderPriceTier.min_quantity"
    )


class OrderPriceTier(Base):
    """A supplier's volume price: from this group total on, this unit price."""

    __tablename__ = "order_price_tier"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "min_quantity"),
        sa.CheckConstraint("min_quantity >= 0", name="min_nonnegative"),
        sa.CheckConstraint("unit_price > 0", name="price_positive"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    order_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("group_order.id", ondelete="CASCADE"))
    min_quantity: so.Mapped[Quantity]
    unit_price: so.Mapped[Money]

    order: so.Mapped[GroupOrder] = so.relationship(back_populates="price_tiers")


class Commitment(Base):
    """One member's quantity in one order (one row per member per order)."""

    __tablename__ = "commitment"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "contact_id"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("order_quantity > 0", name="order_quantity_positive"),
        sa.CheckConstraint(
            "delivered_quantity IS NULL OR delivered_quantity >= 0", name="delivered_nonnegative"
        ),
        sa.CheckConstraint(
            "confirmation IS NULL OR confirmation IN ('confirmed', 'disputed')", name="confirmation_known"
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    order_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("group_order.id"))
    contact_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("contact.id"))
    quantity: so.Mapped[Quantity]
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("unit.id"))
    # The same quantity in the order's unit; the order total is the sum of these.
    order_quantity: so.Mapped[Quantity]
    delivered_quantity: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(14, 3))
    # The grade found at delivery, when the leader recorded it.
    delivered_grade_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("grade.id"))
    delivered_at: so.Mapped[dt.datetime | None]
    # Delivered quantity x final price, less the group's fee: what the member is owed.
    payout: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(14, 2))
    # The mobile-money (or other) transaction code the leader gives; smsgw moves no money.
    payment_reference: so.Mapped[str | None] = so.mapped_column(sa.String(40))
    paid_at: so.Mapped[dt.datetime | None]
    # The member's word on the payment: confirmed, or disputed (with what they said).
    confirmation: so.Mapped[str | None] = so.mapped_column(sa.String(10))
    confirmed_at: so.Mapped[dt.datetime | None]
    dispute_note: so.Mapped[str | None] = so.mapped_column(sa.Text)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    updated_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow, onupdate=utcnow)

    order: so.Mapped[GroupOrder] = so.relationship(back_populates="commitments")
    contact: so.Mapped[Contact] = so.relationship()
    unit: so.Mapped[Unit] = so.relationship()
    delivered_grade: so.Mapped[Grade | None] = so.relationship()
