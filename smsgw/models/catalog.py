"""Catalog tables: commodities, units, markets, grades and their limits."""

from __future__ import annotations

import decimal
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Base, Factor

COMMODITY_KINDS = ("produce", "input")


class Unit(Base):
    """A unit of quantity with its factor to a base unit (kg for weights)."""

    __tablename__ = "unit"
    __table_args__ = (sa.CheckConstraint("factor > 0", name="factor_positive"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    base: so.Mapped[str] = so.mapped_column(sa.String(16))
    factor: so.Mapped[Factor]
    # Short label per language ({"en": "90kg bag", ...}), shown on phones.
    names: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)

    aliases: so.Mapped[list[UnitAlias]] = so.relationship(
        back_populates="unit", cascade="all, delete-orphan"
    )

    def label(self, lang: str) -> str:
        """The unit's short label in ``lang``, English if missing."""
        return self.names.get(lang) or self.names.get("en") or self.code

    def to_base(self, quantity: decimal.Decimal) -> decimal.Decimal:
        """``quantity`` of this unit expressed in the base unit."""
        return quantity * self.factor


class UnitAlias(Base):
    """A word a person may type for a unit (``90kg``, ``gunia``, ``quintal``)."""

    __tablename__ = "unit_alias"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("unit.id", ondelete="CASCADE"))
    alias: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)

    unit: so.Mapped[Unit] = so.relationship(back_populates="aliases")


class Commodity(Base):
    """A crop or an input, with its names per language."""

    __tablename__ = "commodity"
    __table_args__ = (sa.CheckConstraint("kind IN ('produce', 'input')", name="kind_known"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16), default="produce")
    default_unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("unit.id"))
    # Display names and bulletin short names per language.
    names: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)
    short_names: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)

    default_unit: so.Mapped[Unit] = so.relationship()
    aliases: so.Mapped[list[CommodityAlias]] = so.relationship(
        back_populates="commodity", cascade="all, delete-orphan"
    )
    grades: so.Mapped[list[Grade]] = so.relationship(
        back_populates="commodity", order_by="Grade.rank"
    )

    def name(self, lang: str) -> str:
        """The commodity's name in ``lang``, English if missing."""
        return self.names.get(lang) or self.names.get("en") or self.code

    def short(self, lang: str) -> str:
        """The short name used where space is tight (bulletins)."""
        return self.short_names.get(lang) or self.name(lang)


class CommodityAlias(Base):
    """A word for a commodity in one language, as farmers type it."""

    __tablename__ = "commodity_alias"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    commodity_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("commodity.id", ondelete="CASCADE")
    )
    lang: so.Mapped[str] = so.mapped_column(sa.String(5))
    alias: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)

    commodity: so.Mapped[Commodity] = so.relationship(back_populates="aliases")


class Market(Base):
    """A market place, with the zone and currency its prices and bulletins use."""

    __tablename__ = "market"
    __table_args__ = (
        sa.CheckConstraint("bulletin_hour BETWEEN 0 AND 23", name="bulletin_hour_range"),
        sa.CheckConstraint("length(currency) = 3", name="currency_iso"),
        sa.CheckConstraint("length(country) = 2", name="country_iso"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(80))
    short_name: so.Mapped[str] = so.mapped_column(sa.String(20))
    country: so.Mapped[str] = so.mapped_column(sa.String(2))
    region: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    timezone: so.Mapped[str] = so.mapped_column(sa.String(64))
    currency: so.Mapped[str] = so.mapped_column(sa.String(3))
    latitude: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(9, 6))
    longitude: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(9, 6))
    bulletin_hour: so.Mapped[int] = so.mapped_column(default=6)

    aliases: so.Mapped[list[MarketAlias]] = so.relationship(
        back_populates="market", cascade="all, delete-orphan"
    )


class MarketAlias(Base):
    """Another name people use for a market."""

    __tablename__ = "market_alias"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    market_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("market.id", ondelete="CASCADE"))
    alias: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)

    market: so.Mapped[Market] = so.relationship(back_populates="aliases")


class Grade(Base):
    """A quality grade of a commodity under a named standard, optionally a buyer's own."""

    __tablename__ = "grade"
    __table_args__ = (
        sa.UniqueConstraint("commodity_id", "buyer_id", "code"),
        sa.CheckConstraint("rank >= 1", name="rank_positive"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    commodity_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("commodity.id"))
    buyer_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("buyer.id"))
    code: so.Mapped[str] = so.mapped_column(sa.String(16))
    rank: so.Mapped[int] = so.mapped_column(default=1)
    standard: so.Mapped[str] = so.mapped_column(sa.String(80))
    # Price difference against the commodity's reference grade, in percent (+5, -10).
    price_diff_pct: so.Mapped[decimal.Decimal] = so.mapped_column(
        sa.Numeric(6, 2), default=decimal.Decimal(0)
    )
    # One sentence per language saying what the grade requires.
    requirements: so.Mapped[dict[str, Any]] = so.mapped_column(default=dict)

    commodity: so.Mapped[Commodity] = so.relationship(back_populates="grades")
    limits: so.Mapped[list[GradeLimit]] = so.relationship(
        back_populates="grade", cascade="all, delete-orphan", order_by="GradeLimit.id"
    )

    def requirement(self, lang: str) -> str:
        """The grade's requirement text in ``lang``, English if missing."""
        return self.requirements.get(lang) or self.requirements.get("en") or ""


class GradeLimit(Base):
    """One measurable limit of a grade (moisture at most 13.5 %, aflatoxin 10 ppb)."""

    __tablename__ = "grade_limit"
    __table_args__ = (
        sa.UniqueConstraint("grade_id", "parameter"),
        sa.CheckConstraint("min_value IS NOT NULL OR max_value IS NOT NULL", name="has_bound"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    grade_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("grade.id", ondelete="CASCADE"))
    parameter: so.Mapped[str] = so.mapped_column(sa.String(40))
    min_value: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(10, 3))
    max_value: so.Mapped[decimal.Decimal | None] = so.mapped_column(sa.Numeric(10, 3))
    unit: so.Mapped[str] = so.mapped_column(sa.String(8), default="%")

    grade: so.Mapped[Grade] = so.relationship(back_populates="limits")
