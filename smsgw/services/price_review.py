"""The operator's review of held prices: approve, reject or correct, each change audited.

A reporter whose held price is later decided hears about it by SMS through the outbox,
in the same transaction as the decision.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.i18n import N_, Text
from smsgw.messaging.outbox import enqueue
from smsgw.models import (
    AuditEntry,
    Contact,
    OperatorUser,
    OutboundMessage,
    PriceObservation,
    PriceReporter,
)
from smsgw.services.price_files import CENT, MAX_AMOUNT, MICRO, storable

ENTITY = "price_observation"
RECENT = 5
# Bulk approval updates and audits this many rows per statement.
CHUNK = 500

PUBLISHED = N_("Your price %(crop)s %(market)s %(price)s/%(unit)s was published. Thank you.")
NOT_PUBLISHED = N_(
    "Your price %(crop)s %(market)s %(price)s/%(unit)s was not published after review. Please check it and send again."
)


class ReviewError(ValueError):
    """A review action that cannot be done; the message says why in one line."""


@dataclass(frozen=True)
class PendingPrice:
    """A held price with what an operator needs to decide on it."""

    observation: PriceObservation
    # The market's latest approved prices of the same commodity and kind, per base unit.
    recent: list[tuple[dt.date, decimal.Decimal]]


@dataclass(frozen=True)
class ReporterRecord:
    """How a reporter's prices fared: approved, rejected and still pending."""

    reporter_id: int
    name: str
    phone: str
    approved: int
    rejected: int
    pending: int


def _snapshot(observation: PriceObservation) -> dict[str, Any]:
    return {
        "status": observation.status,
        "status_reason": observation.status_reason,
        "amount": str(decimal.Decimal(observation.amount).quantize(CENT)),
        "price_per_base": str(decimal.Decimal(observation.price_per_base).quantize(MICRO)),
    }


def _audit(
    session: so.Session,
    observation: PriceObservation,
    action: str,
    before: dict[str, Any],
    user: OperatorUser | None,
    actor: str,
) -> None:
    session.add(
        AuditEntry(
            user_id=user.id if user else None,
            actor=user.email if user else actor,
            action=action,
            entity=ENTITY,
            entity_id=str(observation.id),
            before=before,
            after=_snapshot(observation),
        )
    )


def _get(session: so.Session, observation_id: int) -> PriceObservation:
    observation = session.get(PriceObservation, observation_id)
    if observation is None:
        raise ReviewError(f"no price with id {observation_id}")
    return observation


def _decide(
    session: so.Session,
    observation: PriceObservation,
    decision: tuple[str, str, str],
    before: dict[str, Any],
    user: OperatorUser | None,
    actor: str,
) -> PriceObservation:
    """Record an operator's (audit action, status, reason) on a price, audit it, tell its reporter."""
    action, status, reason = decision
    observation.status = status
    observation.status_reason = reason
    observation.reviewed_at = utcnow()
    observation.reviewed_by_id = user.id if user else None
    _audit(session, observation, action, before, user, actor)
    notify_reporter(session, observation)
    session.flush()
    return observation


def list_pending(
    session: so.Session, source: str | None = None, limit: int = 50
) -> list[PendingPrice]:
    """Held prices, oldest first, each with its market's recent approved prices."""
    query = (
        sa.select(PriceObservation)
        .where(PriceObservation.status == "pending")
        .options(
            so.joinedload(PriceObservation.market),
            so.joinedload(PriceObservation.commodity),
            so.joinedload(PriceObservation.unit),
        )
        .order_by(PriceObservation.observed_on, PriceObservation.id)
        .limit(limit)
    )
    if source:
        query = query.where(PriceObservation.source == source)
    found = []
    for observation in session.scalars(query).unique():
        recent = session.execute(
            sa.select(PriceObservation.observed_on, PriceObservation.price_per_base)
            .where(
                PriceObservation.market_id == observation.market_id,
                PriceObservation.commodity_id == observation.commodity_id,
                PriceObservation.kind == observation.kind,
                PriceObservation.status == "approved",
                PriceObservation.observed_on <= observation.observed_on,
            )
            .order_by(PriceObservation.observed_on.desc(), PriceObservation.id.desc())
            .limit(RECENT)
        ).all()
        found.append(PendingPrice(observation, [(day, value) for day, value in recent]))
    return found


def count_pending(session: so.Session, source: str | None = None) -> int:
    """How many prices wait for review (from ``source`` if given)."""
    query = sa.select(sa.func.count(PriceObservation.id)).where(
        PriceObservation.status == "pending"
    )
    if source:
        query = query.where(PriceObservation.source == source)
    return session.scalar(query) or 0


def approve(
    session: so.Session, observation_id: int, user: OperatorUser | None = None, actor: str = "cli"
) -> PriceObservation:
    """Publish a held (or earlier rejected) price and tell its reporter."""
    observation = _get(session, observation_id)
    if observation.status == "approved":
        raise ReviewError(f"price {observation_id} is already approved")
    before = _snapshot(observation)
    return _decide(session, observation, ("price.approve", "approved", ""), before, user, actor)


def reject(
    session: so.Session,
    observation_id: int,
    reason: str,
    user: OperatorUser | None = None,
    actor: str = "cli",
) -> PriceObservation:
    """Refuse a held price, or withdraw a published one, with the operator's reason."""
    if not reason.strip():
        raise ReviewError("a rejection needs a reason")
    observation = _get(session, observation_id)
    if observation.status == "rejected":
        raise ReviewError(f"price {observation_id} is already rejected")
    before = _snapshot(observation)
    return _decide(session, observation, ("price.reject", "rejected", reason.strip()), before, user, actor)


def correct(
    session: so.Session,
    observation_id: int,
    new_amount: decimal.Decimal,
    user: OperatorUser | None = None,
    actor: str = "cli",
) -> PriceObservation:
    """Replace a price's amount (same unit) and publish it, keeping the old value in the audit."""
    observation = _get(session, observation_id)
    stored = storable(decimal.Decimal(new_amount), observation.unit.factor)
    if stored is None:
        raise ReviewError(f"a corrected price must be above 0 and below {MAX_AMOUNT:,.0f}")
    before = _snapshot(observation)
    observation.amount, observation.price_per_base = stored
    return _decide(session, observation, ("price.correct", "approved", ""), before, user, actor)


def approve_all(
    session: so.Session,
    source: str | None = None,
    user: OperatorUser | None = None,
    actor: str = "cli",
) -> int:
    """Publish every held price (of ``source``), e.g. an imported series an operator checked."""
    query = sa.select(
        PriceObservation.id, PriceObservation.status_reason, PriceObservation.reporter_id
    ).where(PriceObservation.status == "pending")
    if source:
        query = query.where(PriceObservation.source == source)
    held = session.execute(query.order_by(PriceObservation.id)).all()
    now = utcnow()
    # Set-based: an imported series can hold thousands of prices; one audit row each still.
    # The ORM-enabled UPDATE also refreshes any of these rows already loaded in the session.
    for start in range(0, len(held), CHUNK):
        chunk = held[start : start + CHUNK]
        session.execute(
            sa.update(PriceObservation)
            .where(
                PriceObservation.id.in_([row.id for row in chunk]),
                PriceObservation.status == "pending",
            )
            .values(
                status="approved",
                status_reason="",
                reviewed_at=now,
                reviewed_by_id=user.id if user else None,
            )
        )
        session.execute(
            # __table__ is typed as any FromClause; a declarative model's is a Table.
            sa.insert(cast(sa.Table, AuditEntry.__table__)),
            [
                {
                    "at": now,
                    "user_id": user.id if user else None,
                    "actor": user.email if user else actor,
                    "action": "price.approve",
                    "entity": ENTITY,
                    "entity_id": str(row.id),
                    "before": {"status": "pending", "status_reason": row.status_reason},
                    "after": {"status": "approved"},
                }
                for row in chunk
            ],
        )
    reported = [row.id for row in held if row.reporter_id is not None]
    for observation_id in reported:
        notify_reporter(session, session.get(PriceObservation, observation_id))
    session.flush()
    return len(held)


def notify_reporter(
    session: so.Session, observation: PriceObservation | None
) -> OutboundMessage | None:
    """Queue an SMS telling the reporter their held price was published or not."""
    if observation is None or observation.reporter_id is None or observation.status == "pending":
        return None
    contact = session.scalar(
        sa.select(Contact).join(PriceReporter).where(PriceReporter.id == observation.reporter_id)
    )
    if contact is None or contact.opted_out:
        return None  # STOP is honoured for receipts too
    t = Text(contact.language)
    msgid = PUBLISHED if observation.status == "approved" else NOT_PUBLISHED
    # Short names keep the receipt in one SMS whatever the market's full name.
    text = t(
        msgid,
        crop=observation.commodity.short(t.lang),
        market=observation.market.short_name,
        price=t.money(observation.amount, observation.currency),
        unit=observation.unit.label(t.lang),
    )
    return enqueue(
        session,
        to=contact.phone,
        text=text,
        purpose="receipt",
        key=f"price:{observation.id}:{observation.status}",
        lang=t.lang,
        contact_id=contact.id,
    )


def reporter_records(session: so.Session) -> list[ReporterRecord]:
    """Each reporter's approved, rejected and pending report counts, most reports first."""
    counts = {
        status: sa.func.count(PriceObservation.id).filter(PriceObservation.status == status)
        for status in ("approved", "rejected", "pending")
    }
    rows = session.execute(
        sa.select(
            PriceReporter.id,
            Contact.name,
            Contact.phone,
            counts["approved"],
            counts["rejected"],
            counts["pending"],
        )
        .join(Contact, Contact.id == PriceReporter.contact_id)
        .outerjoin(PriceObservation, PriceObservation.reporter_id == PriceReporter.id)
        .group_by(PriceReporter.id, Contact.name, Contact.phone)
        .order_by(sa.func.count(PriceObservation.id).desc(), PriceReporter.id)
    ).all()
    return [ReporterRecord(*row) for row in rows]
