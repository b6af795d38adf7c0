"""Prices reported by registered reporters: checked, then published or held for review."""
from __future__ import annotations

import datetime as dt
import decimal
import statistics

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.i18n import N_
from smsgw.models import Commodity, Contact, Market, PriceObservation, PriceReporter, Unit

HISTORY = dt.timedelta(days=30)
# A trusted reporter's price within this share of the market's recent median is published
# at once; anything else waits for an operator (a wrong price sent to thousands does harm).
AUTO_APPROVE_BAND = decimal.Decimal("0.25")


class ReportError(ValueError):
    """A report that cannot be taken; ``message`` is a msgid for the reply."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def reporter_for(session: so.Session, phone: str) -> PriceReporter | None:
    """The active reporter behind ``phone``, if any."""
    return session.scalar(
        sa.select(PriceReporter).join(Contact).where(Contact.phone == phone, PriceReporter.active.is_(True))
    )


def recent_median(session: so.Session, commodity: Commodity, market: Market, day: dt.date) -> decimal.Decimal | None:
    """The median approved wholesale price per base unit over the last 30 days."""
    values = session.scalars(
        sa.select(PriceObservation.price_per_base).where(
            PriceObservation.commodity_id == commodity.id,
            PriceObservation.market_id == market.id,
            PriceObservation.kind == "wholesale",
            PriceObservation.status == "approved",
            PriceObservation.observed_on.between(day - HISTORY, day),
        )
    ).all()
    return decimal.Decimal(statistics.median(values)) if values else None


def submit_report(
    session: so.Session,
    phone: str,
    *,
    commodity: Commodity,
    market: Market,
    amount: decimal.Decimal,
    unit: Unit,
    day: dt.date,
    source_ref: str,
) -> PriceObservation:
    """Store a reporter's price as pending, or approved when trusted and in range."""
    reporter = reporter_for(session, phone)
    if reporter is None:
        raise ReportError(N_("Only registered price reporters can send prices."))
    if market not in reporter.markets:
        raise ReportError(N_("You are not registered to report prices for this market."))
    if amount <= 0:
        raise ReportError(N_("That price is not a number above 0."))
    existing = session.scalar(
        sa.select(PriceObservation).where(PriceObservation.source == "sms", PriceObservation.source_ref == source_ref)
    )
    if existing is not None:
        return existing
    per_base = (amount / unit.factor).quantize(decimal.Decimal("0.000001"))
    median = recent_median(session, commodity, market, day)
    status, reason = "pending", ""
    if median is None:
        reason = "no recent prices to compare with"
    elif abs(per_base - median) / median > AUTO_APPROVE_BAND:
        reason = f"{(per_base / median - 1) * 100:+.0f}% from the 30-day median"
    elif reporter.trusted:
        status = "approved"
    else:
        reason = "reporter not trusted for automatic publication"
    observation = PriceObservation(
        commodity_id=commodity.id,
        market_id=market.id,
        observed_on=day,
        amount=amount,
        unit_id=unit.id,
        currency=market.currency,
        price_per_base=per_base,
        kind="wholesale",
        source="sms",
        source_ref=source_ref,
        status=status,
        status_reason=reason,
        reporter_id=reporter.id,
    )
    session.add(observation)
    session.flush()
    return observation
