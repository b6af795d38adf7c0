"""People: farmers and other contacts, producer groups, buyers, reporters, operators."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Base, utcnow
from smsgw.models.catalog import Commodity, Market

LANG_CHECK = "language IN ('en', 'fr', 'sw', 'wo')"
# "legacy": enrolled before enrolment was its own event (the registration date).
ENROLMENT_SOURCES = ("prices", "group", "operator", "rollout", "legacy")
ENROLMENT_SOURCES_SQL = ", ".join(f"'{source}'" for source in ENROLMENT_SOURCES)


class Contact(Base):
    """A person reached by phone: farmer, leader, reporter or buyer's agent.

    Consent: ``consent`` is ``granted`` once the person has used the service or been
    enrolled, and ``withdrawn`` after STOP; nothing but the STOP acknowledgement is sent
    to a withdrawn contact until they opt back in.
    """

    __tablename__ = "contact"
    __table_args__ = (
        sa.CheckConstraint(LANG_CHECK, name="language_known"),
        sa.CheckConstraint("phone LIKE '+%'", name="phone_e164"),
        sa.CheckConstraint("consent IN ('unknown', 'granted', 'withdrawn')", name="consent_known"),
        sa.CheckConstraint(f"enrolment_source IN ({ENROLMENT_SOURCES_SQL})", name="enrolment_source_known"),
        # A market's bulletin run reads its subscribers in id order, batch by batch.
        sa.Index("ix_contact_home_market_id", "home_market_id", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    phone: so.Mapped[str] = so.mapped_column(sa.String(16), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    language: so.Mapped[str] = so.mapped_column(sa.String(5), default="en")
    # True once the person chose a language themselves (USSD asks first-time callers).
    language_chosen: so.Mapped[bool] = so.mapped_column(default=False)
    home_market_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("market.id"))
    village: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    consent: so.Mapped[str] = so.mapped_column(sa.String(12), default="unknown")
    consented_at: so.Mapped[dt.datetime | None]
    withdrawn_at: so.Mapped[dt.datetime | None]
    # When the farmer enrolled in the service, and how (ENROLMENT_SOURCES): the day they
    # first got a price, joined a group, or were enrolled by an operator or a rollout wave.
    # Registering a name is not enrolment. The analytics compare before and after.
    enrolled_at: so.Mapped[dt.datetime | None]
    enrolment_source: so.Mapped[str | None] = so.mapped_column(sa.String(10))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    # A number played in the admin's phone simulator: its messages never reach the
    # gateway and it is left out of analytics.
    simulated: so.Mapped[bool] = so.mapped_column(default=False, server_default=sa.false())

    home_market: so.Mapped[Market | None] = so.relationship()
    memberships: so.Mapped[list[Membership]] = so.relationship(back_populates="contact")
    # In the order they were made: the order a bulletin lists them in.
    subscriptions: so.Mapped[list[Subscription]] = so.relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="Subscription.id"
    )

    @property
    def opted_out(self) -> bool:
        """True after STOP, until the person opts back in."""
        return self.consent == "withdrawn"


class ProducerGroup(Base):
    """A farmers' group that sells and buys together."""

    __tablename__ = "producer_group"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(80))
    village: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    market_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("market.id"))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    market: so.Mapped[Market | None] = so.relationship()
    memberships: so.Mapped[list[Membership]] = so.relationship(
        back_populates="group", cascade="all, delete-orphan"
    )
    commodities: so.Mapped[list[Commodity]] = so.relationship(secondary="group_commodity")


class GroupCommodity(Base):
    """A commodity a group grows or buys (who hears of a buyer's offer)."""

    __tablename__ = "group_commodity"

    group_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("producer_group.id", ondelete="CASCADE"), primary_key=True
    )
    commodity_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("commodity.id"), primary_key=True)


class Membership(Base):
    """A contact's place in a group: member, or leader (may open and close orders)."""

    __tablename__ = "membership"
    __table_args__ = (
        sa.UniqueConstraint("group_id", "contact_id"),
        sa.CheckConstraint("role IN ('member', 'leader')", name="role_known"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    group_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("producer_group.id", ondelete="CASCADE")
    )
    contact_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"))
    role: so.Mapped[str] = so.mapped_column(sa.String(8), default="member")
    joined_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    group: so.Mapped[ProducerGroup] = so.relationship(back_populates="memberships")
    contact: so.Mapped[Contact] = so.relationship(back_populates="memberships")


class Subscription(Base):
    """A contact's daily price alert for one commodity in one market."""

    __tablename__ = "subscription"
    __table_args__ = (sa.UniqueConstraint("contact_id", "commodity_id", "market_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    contact_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"))
    commodity_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("commodity.id"))
    market_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("market.id"))
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)

    contact: so.Mapped[Contact] = so.relationship(back_populates="subscriptions")
    commodity: so.Mapped[Commodity] = so.relationship()
    market: so.Mapped[Market] = so.relationship()


class Buyer(Base):
    """A trader, processor, exporter or other buyer of farmers' produce, or an input supplier.

    ``country`` and ``currency`` bound what its offers may be: only groups of the same
    country, in the same currency, can take them. ``contact`` is the phone that speaks for
    the buyer (posts offers by SMS, hears when a group takes one).
    """

    __tablename__ = "buyer"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('trader', 'processor', 'exporter', 'wholesaler', 'cooperative', 'supplier')",
            name="kind_known",
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(40), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(80))
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    phone: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    market_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("market.id"))
    country: so.Mapped[str | None] = so.mapped_column(sa.String(2))
    currency: so.Mapped[str | None] = so.mapped_column(sa.String(3))
    contact_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("contact.id"))
    active: so.Mapped[bool] = so.mapped_column(default=True, server_default=sa.true())

    market: so.Mapped[Market | None] = so.relationship()
    contact: so.Mapped[Contact | None] = so.relationship()
    markets: so.Mapped[list[Market]] = so.relationship(secondary="buyer_market")


class BuyerMarket(Base):
    """A market a buyer serves (where it takes delivery)."""

    __tablename__ = "buyer_market"

    buyer_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("buyer.id", ondelete="CASCADE"), primary_key=True)
    market_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("market.id"), primary_key=True)


class PriceReporter(Base):
    """A contact allowed to report prices by SMS; ``trusted`` reports may auto-publish."""

    __tablename__ = "price_reporter"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    contact_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("contact.id", ondelete="CASCADE"), unique=True
    )
    trusted: so.Mapped[bool] = so.mapped_column(default=False)
    active: so.Mapped[bool] = so.mapped_column(default=True)

    contact: so.Mapped[Contact] = so.relationship()
    markets: so.Mapped[list[Market]] = so.relationship(secondary="reporter_market")


class ReporterMarket(Base):
    """A market a reporter may report for."""

    __tablename__ = "reporter_market"

    reporter_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("price_reporter.id", ondelete="CASCADE"), primary_key=True
    )
    market_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("market.id"), primary_key=True)


class OperatorUser(Base):
    """A person who signs in to the web admin."""

    __tablename__ = "operator_user"
    __table_args__ = (
        sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role_known"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(255))
    role: so.Mapped[str] = so.mapped_column(sa.String(10), default="viewer")
    language: so.Mapped[str] = so.mapped_column(sa.String(5), default="en")
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[dt.datetime] = so.mapped_column(default=utcnow)
    last_login_at: so.Mapped[dt.datetime | None]
    # Base32 TOTP secret once the operator has turned on the second factor, and the last
    # time step accepted (a code is good once: a replayed code is refused).
    totp_secret: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    totp_last_step: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)
