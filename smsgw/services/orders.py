"""Group orders from opening to fulfilment: commitments, totals, closing, member SMS.

Many members commit to one order at the same moment, by SMS and USSD, from different
processes. Every action that changes an order or its commitments first locks the order
row (``_lock_order``), so those actions run one after another per order, and the running
``GroupOrder.committed_total`` is rewritten from the locked value in the same transaction
as the commitment it reflects. The caller commits; a refusal raises ``OrderError`` before
anything is written, and the caller rolls back.

On SQLite, call the functions that change an order before any read in the transaction
(see ``_write_first``): a transaction that has already read cannot wait for the lock.
"""
from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.i18n import N_, Text
from smsgw.messaging.outbox import enqueue
from smsgw.models import (
    Buyer,
    BuyOffer,
    Commitment,
    Commodity,
    Contact,
    Grade,
    GroupOrder,
    Membership,
    OrderPriceTier,
    ProducerGroup,
    Unit,
)
from smsgw.services import order_texts

ERROR_CODES = frozenset({
    "not_leader", "not_member", "not_open", "deadline_passed", "bad_quantity", "bad_price",
    "bad_deadline", "no_commitment", "not_found",
})
# Quantities are stored as Numeric(14, 3) and money as Numeric(14, 2); rounding here first
# keeps the sums made in Python and in the database identical.
_QTY = Decimal("0.001")
_CENTS = Decimal("0.01")
# A commitment this many times the target is a typo (an extra zero or two), not produce.
ABSURD_FACTOR = 1000
REMINDER_WINDOW = dt.timedelta(hours=24)


class OrderError(Exception):
    """A refused order action; .code is one of ERROR_CODES, str(e) an English reason for logs."""

    code: str

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class OrderTotals:
    """Where an order stands: the sum of commitments against its target."""

    total: Decimal  # sum of commitments in the order's unit
    target: Decimal
    unit: Unit
    members: int  # number of commitments
    percent: int  # round(total / target * 100)
    unit_price: Decimal | None  # buy orders with tiers: the tier price reached; else order.price


def led_groups(session: so.Session, contact: Contact) -> list[ProducerGroup]:
    """The groups this contact leads, by name."""
    query = (
        sa.select(ProducerGroup).join(Membership)
        .where(Membership.contact_id == contact.id, Membership.role == "leader")
        .order_by(ProducerGroup.name, ProducerGroup.id)
    )
    return list(session.scalars(query).all())


def open_orders_for(session: so.Session, contact: Contact, now: dt.datetime) -> list[GroupOrder]:
    """Open orders (deadline not passed) of the contact's groups, newest first."""
    return _group_orders(session, contact, GroupOrder.status == "open", GroupOrder.deadline > now)


def orders_led_by(session: so.Session, contact: Contact) -> list[GroupOrder]:
    """Open and closed orders of the groups the contact leads, newest first."""
    return _group_orders(
        session, contact, Membership.role == "leader", GroupOrder.status.in_(("open", "closed"))
    )


def _group_orders(
    session: so.Session, contact: Contact, *where: sa.ColumnElement[bool]
) -> list[GroupOrder]:
    query = (
        sa.select(GroupOrder).join(Membership, Membership.group_id == GroupOrder.group_id)
        .where(Membership.contact_id == contact.id, *where)
        .order_by(GroupOrder.created_at.desc(), GroupOrder.id.desc())
    )
    return list(session.scalars(query).all())


def get_order(session: so.Session, order_id: int) -> GroupOrder | None:
    """The order with this id, if any."""
    return session.get(GroupOrder, order_id)


def commitments(session: so.Session, order: GroupOrder) -> list[Commitment]:
    """The order's commitments, largest first."""
    query = (
        sa.select(Commitment).where(Commitment.order_id == order.id)
        .options(so.selectinload(Commitment.contact), so.selectinload(Commitment.unit))
        .order_by(Commitment.order_quantity.desc(), Commitment.id)
    )
    return list(session.scalars(query).all())


def totals(session: so.Session, order: GroupOrder) -> OrderTotals:
    """The order's total, target, number of committed members and the price reached."""
    members = session.scalar(
        sa.select(sa.func.count(Commitment.id)).where(Commitment.order_id == order.id)
    )
    total, unit_price = order.committed_total, order.price
    if order.kind == "buy":
        # Tiers are ordered by min_quantity: the last one reached sets the price.
        for tier in order.price_tiers:
            if total >= tier.min_quantity:
                unit_price = tier.unit_price
    return OrderTotals(
        total=total, target=order.target_quantity, unit=order.unit, members=members or 0,
        percent=round(total / order.target_quantity * 100), unit_price=unit_price,
    )


def open_order(
    session: so.Session, leader: Contact, group: ProducerGroup, *, kind: str,
    commodity: Commodity, target_quantity: Decimal, unit: Unit, price: Decimal | None,
    deadline: dt.datetime, buyer: Buyer | None = None, grade: Grade | None = None,
    offer: BuyOffer | None = None, tiers: Sequence[tuple[Decimal, Decimal]] = (),
    draft: bool = False,
) -> GroupOrder:
    """Open a group order (leaders only) and tell every other member about it.

    A ``draft`` (a price far from the market's, to be confirmed by the leader) is stored
    and told to nobody until ``publish_draft``.
    """
    # Kind, grade and market come from menus and data, not from what a farmer typed:
    # a wrong one is a bug in the caller, hence ValueError rather than OrderError.
    if kind not in ("sell", "buy") or (tiers and kind != "buy"):
        raise ValueError(f"kind {kind!r} with {len(tiers)} price tiers")
    if grade is not None and grade.commodity_id != commodity.id:
        raise ValueError("grade belongs to another commodity")
    market = group.market or leader.home_market
    if market is None:
        raise ValueError(f"group {group.id} has no market to take a currency from")
    if _role(session, leader.id, group.id) != "leader":
        raise OrderError("not_leader", f"contact {leader.id} does not lead group {group.id}")
    target = _positive(target_quantity, "bad_quantity", _QTY)
    if price is not None:
        price = _positive(price, "bad_price", _CENTS)
    if deadline.tzinfo is None or deadline <= utcnow():
        raise OrderError("bad_deadline", f"deadline {deadline} is not in the future")
    tier_rows: dict[Decimal, OrderPriceTier] = {}
    for min_quantity, unit_price in tiers:
        if not min_quantity.is_finite() or min_quantity < 0:
            raise OrderError("bad_quantity", f"tier quantity {min_quantity} is not >= 0")
        start = min_quantity.quantize(_QTY)
        if start in tier_rows:
            raise OrderError("bad_quantity", f"two tiers start at {start}")
        tier_rows[start] = OrderPriceTier(
            min_quantity=start, unit_price=_positive(unit_price, "bad_price", _CENTS)
        )
    order = GroupOrder(
        group_id=group.id, opened_by_id=leader.id, kind=kind, commodity_id=commodity.id,
        grade_id=grade.id if grade else (offer.grade_id if offer else None),
        buyer_id=buyer.id if buyer else (offer.buyer_id if offer else None),
        offer_id=offer.id if offer else None, target_quantity=target, unit_id=unit.id,
        price=price, currency=market.currency, deadline=deadline, status="draft" if draft else "open",
        committed_total=Decimal(0), price_tiers=[tier_rows[key] for key in sorted(tier_rows)],
    )
    session.add(order)
    session.flush()
    if not draft:
        _announce(session, order)
    return order


def publish_draft(session: so.Session, order_id: int, leader: Contact, *, now: dt.datetime) -> GroupOrder:
    """The leader confirms a draft order's price: it opens and the members are told."""
    order = _lock_order(session, order_id, leader)
    if order.status != "draft":
        raise OrderError("not_open", f"order {order.id} is {order.status}, not a draft")
    if order.deadline <= now:
        raise OrderError("deadline_passed", f"draft {order.id} ran out on {order.deadline}")
    order.status = "open"
    session.flush()
    _announce(session, order)
    return order


def _announce(session: so.Session, order: GroupOrder) -> None:
    """The new-order SMS to every member of the group but the leader who opened it."""
    others = session.scalars(
        sa.select(Contact).join(Membership)
        .where(Membership.group_id == order.group_id, Contact.id != order.opened_by_id).order_by(Contact.id)
    ).all()
    for member in others:
        _send(session, member, order_texts.announcement(Text(member.language), order), "order",
              f"order:{order.id}:opened:{member.id}")


def commit(
    session: so.Session, order_id: int, member: Contact, quantity: Decimal,
    unit: Unit | None = None, *, now: dt.datetime, event_key: str,
) -> OrderTotals:
    """Set the member's quantity in an open order (create or change) and send a receipt."""
    return _change(session, order_id, member, (quantity, unit), now, event_key)


def withdraw(
    session: so.Session, order_id: int, member: Contact, *, now: dt.datetime, event_key: str
) -> OrderTotals:
    """Remove the member's commitment from an open order and send a receipt."""
    return _change(session, order_id, member, None, now, event_key)


def _change(
    session: so.Session, order_id: int, member: Contact,
    wanted: tuple[Decimal, Unit | None] | None, now: dt.datetime, event_key: str,
) -> OrderTotals:
    """Commit (``wanted`` is a quantity and unit) or withdraw (``wanted`` is None)."""
    order = _lock_order(session, order_id)
    existing = session.scalars(
        sa.select(Commitment)
        .where(Commitment.order_id == order.id, Commitment.contact_id == member.id)
        .execution_options(populate_existing=True)
    ).one_or_none()
    # A former member may still withdraw what they committed while in the group.
    if (wanted or not existing) and _role(session, member.id, order.group_id) is None:
        raise OrderError("not_member", f"contact {member.id} is not in group {order.group_id}")
    if order.status != "open":
        raise OrderError("not_open", f"order {order.id} is {order.status}")
    if now >= order.deadline:
        raise OrderError("deadline_passed", f"order {order.id} took changes until {order.deadline}")
    before = existing.order_quantity if existing else Decimal(0)
    if wanted is None:
        if existing is None:
            raise OrderError("no_commitment", f"contact {member.id} has nothing in {order.id}")
        quantity, unit, after = existing.quantity, existing.unit, Decimal(0)
        session.delete(existing)
        event, msgid = "withdraw", N_(
            "Order %(id)s: your commitment of %(qty)s is withdrawn. "
            "Group total %(total)s/%(target)s."
        )
    else:
        quantity, unit = _positive(wanted[0], "bad_quantity", _QTY), wanted[1] or order.unit
        if unit.base != order.unit.base:
            raise OrderError("bad_quantity", f"{unit.code} does not convert to {order.unit.code}")
        after = (quantity * unit.factor / order.unit.factor).quantize(_QTY, decimal.ROUND_HALF_UP)
        if after <= 0 or after > order.target_quantity * ABSURD_FACTOR:
            raise OrderError("bad_quantity", f"{quantity} {unit.code} is not a credible quantity")
        if existing is None:
            session.add(Commitment(order_id=order.id, contact_id=member.id, quantity=quantity,
                                   unit_id=unit.id, order_quantity=after))
        else:
            existing.quantity, existing.unit_id, existing.order_quantity = quantity, unit.id, after
        event, msgid = "commit", N_(
            "Order %(id)s: you committed %(qty)s. "
            "Group total %(total)s/%(target)s."
        )
    # The locked row's total plus this change: no other transaction can move it before
    # ours ends, so the stored total stays the exact sum of the commitment rows.
    order.committed_total = order.committed_total - before + after
    session.flush()
    text = order_texts.receipt(Text(member.language), order, msgid, quantity, unit)
    _send(session, member, text, "receipt", f"order:{order.id}:{event}:{event_key}")
    return totals(session, order)


def close(session: so.Session, order_id: int, leader: Contact, *, now: dt.datetime) -> GroupOrder:
    """Close an open order (leaders only) and tell each committed member the final total."""
    order = _lock_order(session, order_id, leader)
    if order.status != "open":
        raise OrderError("not_open", f"order {order.id} is {order.status}")
    _close_locked(session, order, now)
    return order


def cancel(session: so.Session, order_id: int, leader: Contact, *, now: dt.datetime) -> GroupOrder:
    """Cancel a draft, open or closed order (leaders only) and tell each committed member;
    what it reserved of a buyer's offer is given back."""
    order = _lock_order(session, order_id, leader)
    if order.status not in ("draft", "open", "closed"):
        raise OrderError("not_open", f"order {order.id} is {order.status}")
    order.status = "cancelled"
    order.closed_at = order.closed_at or now
    if order.offer_id is not None:
        # Orders opened before reservations existed reserved nothing: never below zero.
        back = BuyOffer.reserved_quantity - order.target_quantity
        session.execute(
            sa.update(BuyOffer).where(BuyOffer.id == order.offer_id)
            .values(reserved_quantity=sa.case((back > 0, back), else_=Decimal(0)))
            .execution_options(synchronize_session=False)
        )
    _notify_committed(session, order, "cancelled", order_texts.cancelled)
    return order


def close_expired(session: so.Session, now: dt.datetime) -> int:
    """Close every open order whose deadline has passed, with the closing SMS; the count."""
    expired = (GroupOrder.status == "open", GroupOrder.deadline <= now)
    _write_first(session, *expired)
    ids = session.scalars(sa.select(GroupOrder.id).where(*expired).order_by(GroupOrder.id)).all()
    closed = 0
    # One order at a time in id order, so two runs can never wait on each other in a cycle;
    # the check is repeated under the lock because a leader may have closed it meanwhile.
    for order_id in ids:
        order = _lock_order(session, order_id)
        if order.status == "open" and order.deadline <= now:
            _close_locked(session, order, now)
            closed += 1
    return closed


def fulfil(
    session: so.Session, order_id: int, *, final_price: Decimal,
    delivered: Mapping[int, Decimal], now: dt.datetime,
) -> GroupOrder:
    """Record a closed order as done: the price per order unit and what each member delivered.

    ``delivered`` maps contact ids to quantities in the order's unit; a committed member
    missing from it delivered nothing.
    """
    order = _lock_order(session, order_id)
    if order.status != "closed":
        raise OrderError("not_open", f"order {order.id} is {order.status}, not closed")
    price = _positive(final_price, "bad_price", _CENTS)
    rows = commitments(session, order)
    strangers = sorted(set(delivered) - {item.contact_id for item in rows})
    if strangers:
        raise OrderError("no_commitment", f"contacts {strangers} have nothing in order {order.id}")
    if any(not q.is_finite() or q < 0 for q in delivered.values()):
        raise OrderError("bad_quantity", "a delivered quantity is negative")
    order.final_price, order.status, order.fulfilled_at = price, "fulfilled", now
    for item in rows:
        item.delivered_quantity = delivered.get(item.contact_id, Decimal(0)).quantize(_QTY)
    _notify_committed(session, order, "fulfilled", order_texts.fulfilment)
    return order


def reminders_due(session: so.Session, now: dt.datetime) -> list[tuple[GroupOrder, Contact]]:
    """(order, member) to remind: orders closing within 24h, members not in yet nor opted out."""
    committed = sa.exists().where(Commitment.order_id == GroupOrder.id,
                                  Commitment.contact_id == Contact.id)
    query = (
        sa.select(GroupOrder, Contact)
        .join(Membership, Membership.group_id == GroupOrder.group_id)
        .join(Contact, Contact.id == Membership.contact_id)
        .where(GroupOrder.status == "open", GroupOrder.deadline > now,
               GroupOrder.deadline <= now + REMINDER_WINDOW, Contact.consent != "withdrawn",
               ~committed)
        .order_by(GroupOrder.deadline, GroupOrder.id, Contact.id)
    )
    return [(order, member) for order, member in session.execute(query)]


def _lock_order(session: so.Session, order_id: int, leader: Contact | None = None) -> GroupOrder:
    """The order row, locked until the transaction ends; refused unless ``leader`` leads it."""
    query = sa.select(GroupOrder).where(GroupOrder.id == order_id)
    if not _write_first(session, GroupOrder.id == order_id):
        query = query.with_for_update()
    # populate_existing: an order already in this session must show the locked row's
    # total and status, not what was read before the lock.
    order = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if order is None:
        raise OrderError("not_found", f"no order {order_id}")
    if leader is not None and _role(session, leader.id, order.group_id) != "leader":
        raise OrderError("not_leader", f"contact {leader.id} does not lead group {order.group_id}")
    return order


def _write_first(session: so.Session, *where: sa.ColumnElement[bool]) -> bool:
    """On SQLite, take the database write lock by touching the orders matched; else False.

    SQLite has no row locks, and a deferred transaction that reads first and writes later
    fails at once with "database is locked" (no busy wait) when another connection wrote
    in between. A write as the first statement waits for the write lock under
    busy_timeout, and all that is read after it is current and stays so until commit.
    The self-assignment changes no data.
    """
    if session.get_bind().dialect.name != "sqlite":
        return False
    session.execute(
        sa.update(GroupOrder).where(*where).values(committed_total=GroupOrder.committed_total)
        .execution_options(synchronize_session=False)
    )
    return True


def _role(session: so.Session, contact_id: int, group_id: int) -> str | None:
    """'leader', 'member', or None when the contact is not in the group."""
    return session.scalar(
        sa.select(Membership.role)
        .where(Membership.group_id == group_id, Membership.contact_id == contact_id)
    )


def _positive(value: Decimal, code: str, step: Decimal) -> Decimal:
    """``value`` rounded to ``step``; refused with ``code`` unless finite, above zero, and
    within the 14 digits of our Numeric columns."""
    if not value.is_finite() or value.adjusted() >= 14:
        raise OrderError(code, f"{value} is not a credible amount")
    rounded = value.quantize(step, decimal.ROUND_HALF_UP)
    if rounded <= 0 or len(rounded.as_tuple().digits) > 14:
        raise OrderError(code, f"{value} is not a positive amount")
    return rounded


def _close_locked(session: so.Session, order: GroupOrder, now: dt.datetime) -> None:
    order.status, order.closed_at = "closed", now
    _notify_committed(session, order, "closed", order_texts.closed)


def _notify_committed(
    session: so.Session, order: GroupOrder, event: str,
    compose: Callable[[Text, GroupOrder, Commitment], str],
) -> None:
    """Send each committed member the message ``compose`` writes in their language."""
    session.flush()
    for item in commitments(session, order):
        text = compose(Text(item.contact.language), order, item)
        _send(session, item.contact, text, "order", f"order:{order.id}:{event}:{item.contact_id}")


def _send(session: so.Session, contact: Contact, text: str, purpose: str, key: str) -> None:
    """Queue an SMS unless the contact has opted out."""
    if contact.consent == "withdrawn":
        return
    enqueue(session, to=contact.phone, text=text, purpose=purpose, key=key,
            lang=contact.language, contact_id=contact.id)
