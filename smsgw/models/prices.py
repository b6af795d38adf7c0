"""Price observations: what a commodity cost in a market on a day, and whether it is published."""

from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Base, Money, utcnow
from smsgw.models.catalog import Commodity, Grade, Market, Unit
from smsgw.models.people import PriceReporter

PRICE_KINDS = ("wholesale", "retail", "farm_gate")
PRICE_STATUSES = ("pending", "approved", "rejected")


class PriceObservation(Base):
    """One observed price, stored as given and normalised per base unit.

    Only ``approved`` observations reach farmers. ``source_ref`` identifies a row of an
    imported file or an SMS so that importing the same thing twice adds nothing.
    """

    __tablename__ = "price_observation"
    __table_args__ = (
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("price_per_base > 0", name="per_base_positive"),
        sa.CheckConstraint("kind IN ('wholesale', 'retail', 'farm_gate')", name="kind_known"),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
        sa.CheckConstraint("length(currency) = 3", name="currency_iso"),
        sa.UniqueConstraint("source", "source_ref"),
        # An import checks each batch against the source's rows of the batch's days;
        # without this it reads every row of the source, for every batch.
        sa.Index("ix_price_observation_source_day", "source", "observed_on"),
        sa.Index(
            "ix_price_observation_lookup",
            "commodity_id",
            "market_id",
            "kind",
            "status",
            "observed_on",
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    commodity_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("commodity.id"))
    market_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("market.id"))
    grade_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("grade.id"))
    observed_on: so.Mapped[dt.date]
    amount: so.Mapped[Money]
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("unit.id"))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3))
    # amount / unit factor: the price per kg (or other base unit), for comparisons.
    price_per_base: so.Mapped[decimal.Decimal] = so.mapped_column(sa.Numeric(16, 6))
    kind: so.Mapped[str] = so.mapped_column(sa.String(10), default="wholesale")
    source: so.Mapped[str] = so.mapped_column(sa.String(40))
    source_ref: so.Mapped[str | None] = so.mapped_column(sa.String(120))
    status: so.Mapped[str] = so.mapped_column(sa.String(10), default="pending")
    # Why an observation is held or was rejected (the anomaly check's words).
    status_reason: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    reporter_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("price_reporter.id"))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    reviewed_at: so.Mapped[dt.datetime | None]
    reviewed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("operator_user.id"))

    commodity: so.Mapped[Commodity] = so.relationship()
    market: so.Mapped[Market] = so.relationship()
    grade: so.Mapped[Grade | None] = so.relationship()
    unit: so.Mapped[Unit] = so.relationship()
    reporter: so.Mapped[PriceReporter | None] = so.relationship()
