"""Prices reported by registered reporters: checked, then published or held for review."""

from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.i18n import N_
from smsgw.models import Commodity, Contact, Market, PriceObservation, PriceReporter, Unit
from smsgw.services.price_checks import Policy, candidate_for, check_price
from smsgw.services.price_files import storable

SOURCE = "sms"


class ReportError(ValueError):
    """A report that cannot be taken; ``message`` is a msgid for the reply."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def reporter_for(session: so.Session, phone: str) -> PriceReporter | None:
    """The active reporter behind ``phone``, if any."""
    return session.scalar(
        sa.select(PriceReporter)
        .join(Contact)
        .where(Contact.phone == phone, PriceReporter.active.is_(True))
    )


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
    policy: Policy | None = None,
) -> PriceObservation:
    """Store a reporter's price: approved when trusted and in range, else pending with the reason."""
    reporter = reporter_for(session, phone)
    if reporter is None:
        raise ReportError(N_("Only registered price reporters can send prices."))
    if market not in reporter.markets:
        raise ReportError(N_("You are not registered to report prices for this market."))
    if amount <= 0:
        raise ReportError(N_("That price is not a number above 0."))
    existing = session.scalar(
        sa.select(PriceObservation).where(
            PriceObservation.source == SOURCE, PriceObservation.source_ref == source_ref
        )
    )
    if existing is not None:
        return existing
    stored = storable(amount, unit.factor)
    # Fractions of a cent and sums beyond the columns cannot be stored: ask again, no 500.
    if stored is None:
        raise ReportError(N_("That price is not possible. Please check it."))
    amount, per_base = stored
    # A reporter's trust flag is the policy for SMS: a wrong price sent to thousands does
    # harm, so only trusted reporters publish at once, and only in-range prices.
    decision = check_price(
        session,
        candidate_for(market, commodity.id, "wholesale", unit, day, per_base),
        policy or Policy.from_settings(),
        trusted=reporter.trusted,
        untrusted_reason="reporter not trusted for automatic publication",
    )
    observation = PriceObservation(
        commodity_id=commodity.id,
        market_id=market.id,
        observed_on=day,
        amount=amount,
        unit_id=unit.id,
        currency=market.currency,
        price_per_base=per_base,
        kind="wholesale",
        source=SOURCE,
        source_ref=source_ref,
        status=decision.status,
        status_reason=decision.reason,
        reporter_id=reporter.id,
    )
    session.add(observation)
    session.flush()
    return observation
