"""A closed group order to its payout: deliveries, settlement, payment references, confirmations.

After an order closes, its leader (by USSD or SMS) or an operator (admin order page) records
what each member delivered and the grade found (``deliver``). Settling (``settle``) records
the final price, the day the buyer paid and the group's fee per unit; each member's payout
is delivered quantity x final price less the fee (for a buy order, the member's cost: the
price plus the fee), and every committed member gets a one-SMS statement through the
outbox. The leader then gives the payment reference of each member (``record_reference``,
e.g. the mobile-money code) and each member confirms (``confirm``) or disputes
(``dispute``) it.

smsgw moves no money: it keeps the record, and the statements say so.

Every function that changes an order locks its row first (``orders._lock_order``), as the
order functions do; the caller commits, and rolls back on ``SettlementError``.
"""
from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.config import group_fees
from smsgw.i18n import Text
from smsgw.models import Commitment, Contact, Grade, GroupOrder, Membership
from smsgw.phones import normalize_phone
from smsgw.services import orders, settlement_texts
from smsgw.services.orders import OrderError

SETTLEMENT_CODES = frozenset({
    "not_closed", "already_settled", "not_settled", "missing_delivery", "no_delivery", "no_member",
    "bad_reference", "bad_fee", "bad_date", "bad_grade",
})
_QTY = Decimal("0.001")
_CENTS = Decimal("0.01")
# A payment code as leaders copy it from a mobile-money SMS: letters, digits, a few marks.
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{2,39}")
NOTE_LENGTH = 500
# Positions in the members' list are short; anything longer is read as a phone number.
_POSITION = re.compile(r"[0-9]{1,3}")
CONFIRM_WINDOW = dt.timedelta(days=180)


class SettlementError(OrderError):
    """A refused settlement action; ``.code`` is in SETTLEMENT_CODES or orders.ERROR_CODES.

    ``count`` says how many members a ``missing_delivery`` is about.
    """

    def __init__(self, code: str, reason: str, count: int = 0) -> None:
        super().__init__(code, reason)
        self.count = count


@dataclass(frozen=True)
class Settlement:
    """What settling an order came to."""

    order: GroupOrder
    members: int  # members who delivered something
    total: Decimal  # the sum of the payouts (sell) or costs (buy)


@dataclass(frozen=True)
class MemberLine:
    """One member of an order from commitment to confirmation (admin page, CSV export)."""

    position: int
    commitment: Commitment
    contact: Contact
    committed: Decimal  # in the order's unit
    delivered: Decimal | None
    grade: str
    payout: Decimal | None
    reference: str
    confirmation: str


def members(session: so.Session, order: GroupOrder) -> list[Commitment]:
    """The order's committed members in the order of the leader's list (position 1 first)."""
    return orders.commitments(session, order)


def member_lines(session: so.Session, order: GroupOrder) -> list[MemberLine]:
    """Each committed member's commitment, delivery, payout, reference and confirmation."""
    lines = []
    for position, item in enumerate(members(session, order), start=1):
        lines.append(MemberLine(
            position=position, commitment=item, contact=item.contact, committed=item.order_quantity,
            delivered=item.delivered_quantity, grade=item.delivered_grade.code if item.delivered_grade else "",
            payout=item.payout, reference=item.payment_reference or "", confirmation=item.confirmation or "",
        ))
    return lines


def is_settled(order: GroupOrder) -> bool:
    """Whether the order's payouts have been computed and the statements sent."""
    return order.settled_at is not None


def fee_for(order: GroupOrder, settings: Mapping[str, object]) -> Decimal:
    """The group fee per order unit: the order's own, else GROUP_FEE_PER_UNIT for its currency."""
    if order.fee_per_unit is not None:
        return order.fee_per_unit
    return group_fees(settings).get(order.currency, Decimal(0))


def amount_due(order: GroupOrder, delivered: Decimal, price: Decimal, fee: Decimal) -> Decimal:
    """Delivered x price less the fee per unit (sell: the payout), or plus it (buy: the cost)."""
    each = price - fee if order.kind == "sell" else price + fee
    return max(delivered * each, Decimal(0)).quantize(_CENTS, decimal.ROUND_HALF_UP)


def deliver(
    session: so.Session, order_id: int, member: str | int, quantity: Decimal, *,
    leader: Contact | None, grade: str | int | None = None, now: dt.datetime,
) -> Commitment:
    """Record what a committed member delivered (0: nothing), and the grade found if given.

    ``member`` is a contact id (the admin form) or, as typed by a leader, the member's
    position in the order's list or their phone. ``leader`` None is an operator.
    """
    order = orders._lock_order(session, order_id, leader)
    _closed(order)
    item = _member(session, order, member)
    if not quantity.is_finite() or quantity < 0 or quantity.adjusted() >= 10:
        raise SettlementError("bad_quantity", f"{quantity} is not a delivered quantity")
    amount = quantity.quantize(_QTY, decimal.ROUND_HALF_UP)
    if amount > order.target_quantity * orders.ABSURD_FACTOR:
        raise SettlementError("bad_quantity", f"{quantity} is not a credible delivery")
    if grade is not None:
        item.delivered_grade_id = _grade(session, order, grade).id
    item.delivered_quantity, item.delivered_at = amount, now
    session.flush()
    return item


def delivery_progress(session: so.Session, order: GroupOrder) -> tuple[int, int]:
    """(members with a delivery recorded, committed members)."""
    rows = members(session, order)
    return sum(1 for item in rows if item.delivered_quantity is not None), len(rows)


def settle(
    session: so.Session, order_id: int, *, final_price: Decimal, paid_on: dt.date,
    leader: Contact | None, settings: Mapping[str, object], fee_per_unit: Decimal | None = None,
    now: dt.datetime,
) -> Settlement:
    """Record the final price and the day the buyer paid; compute payouts; send statements.

    Every committed member must have a delivery recorded (0 for none). The fee is
    ``fee_per_unit`` when given, else the order's own, else GROUP_FEE_PER_UNIT.
    """
    order = orders._lock_order(session, order_id, leader)
    _closed(order)
    price = orders._positive(final_price, "bad_price", _CENTS)
    if paid_on > now.date() + dt.timedelta(days=1) or paid_on < order.created_at.date() - dt.timedelta(days=1):
        raise SettlementError("bad_date", f"{paid_on} is not between the order's opening and today")
    rows = members(session, order)
    missing = [item for item in rows if item.delivered_quantity is None]
    if missing:
        raise SettlementError("missing_delivery", f"{len(missing)} members have no delivery", len(missing))
    if not any(item.delivered_quantity for item in rows):
        raise SettlementError("no_delivery", f"nothing was delivered in order {order.id}")
    if fee_per_unit is not None:
        order.fee_per_unit = fee_per_unit
    fee = fee_for(order, settings)
    if not fee.is_finite() or fee < 0 or (order.kind == "sell" and fee >= price) or fee.adjusted() >= 10:
        raise SettlementError("bad_fee", f"fee {fee} against price {price}")
    fee = fee.quantize(_CENTS, decimal.ROUND_HALF_UP)
    order.final_price, order.fee_per_unit, order.paid_on = price, fee, paid_on
    order.status, order.settled_at, order.fulfilled_at = "fulfilled", now, now
    total, paid = Decimal(0), 0
    for item in rows:
        delivered = item.delivered_quantity or Decimal(0)
        item.payout = amount_due(order, delivered, price, fee) if delivered else None
        if item.payout is not None:
            total, paid = total + item.payout, paid + 1
    session.flush()
    for item in rows:
        text = settlement_texts.statement(Text(item.contact.language), order, item)
        orders._send(session, item.contact, text, "order", f"order:{order.id}:statement:{item.contact_id}")
    return Settlement(order=order, members=paid, total=total)


def record_reference(
    session: so.Session, order_id: int, member: str | int, code: str, *, leader: Contact | None,
    now: dt.datetime,
) -> Commitment:
    """Record the payment reference of a member's payout (or cost) and ask them to confirm."""
    order = orders._lock_order(session, order_id, leader)
    _settled(order)
    item = _member(session, order, member)
    code = code.strip()
    if not _REFERENCE.fullmatch(code):
        raise SettlementError("bad_reference", f"{code!r} is not a payment code")
    if item.payout is None:
        raise SettlementError("no_delivery", f"contact {item.contact_id} is owed nothing in order {order.id}")
    item.payment_reference, item.paid_at = code.upper(), now
    session.flush()
    text = settlement_texts.reference(Text(item.contact.language), order, item)
    orders._send(session, item.contact, text, "order",
                 f"order:{order.id}:reference:{item.contact_id}:{item.payment_reference}")
    return item


def confirm(session: so.Session, order_id: int, member: Contact, *, now: dt.datetime) -> Commitment:
    """The member says the payment (or, for inputs, the goods) arrived as stated."""
    item = _own(session, order_id, member)
    item.confirmation, item.confirmed_at = "confirmed", now
    session.flush()
    return item


def dispute(
    session: so.Session, order_id: int, member: Contact, note: str, *, now: dt.datetime, event_key: str,
) -> Commitment:
    """The member says the payment is wrong (``note``: what, in their words); leaders are told."""
    item = _own(session, order_id, member)
    item.confirmation, item.confirmed_at = "disputed", now
    item.dispute_note = " ".join(note.split())[:NOTE_LENGTH] or None
    session.flush()
    order = item.order
    leaders = session.scalars(
        sa.select(Contact).join(Membership)
        .where(Membership.group_id == order.group_id, Membership.role == "leader", Contact.id != member.id)
        .order_by(Contact.id)
    ).all()
    for leader in leaders:
        orders._send(session, leader, settlement_texts.disputed(Text(leader.language), order, member), "order",
                     f"order:{order.id}:dispute:{member.id}:{event_key}")
    return item


def awaiting_confirmation(session: so.Session, member: Contact, now: dt.datetime) -> list[GroupOrder]:
    """Settled orders (last 180 days) where the member is owed or owes something and has not confirmed."""
    query = (
        sa.select(GroupOrder).join(Commitment, Commitment.order_id == GroupOrder.id)
        .where(Commitment.contact_id == member.id, Commitment.payout.is_not(None),
               sa.or_(Commitment.confirmation.is_(None), Commitment.confirmation != "confirmed"),
               GroupOrder.settled_at.is_not(None), GroupOrder.settled_at > now - CONFIRM_WINDOW)
        .order_by(GroupOrder.settled_at.desc(), GroupOrder.id.desc())
    )
    return list(session.scalars(query).all())


def commitment_of(session: so.Session, order: GroupOrder, member: Contact) -> Commitment | None:
    """The member's commitment in the order, if any."""
    return session.scalars(
        sa.select(Commitment).where(Commitment.order_id == order.id, Commitment.contact_id == member.id)
    ).one_or_none()


def grades_for(session: so.Session, order: GroupOrder) -> list[Grade]:
    """The grades a delivery of the order's commodity can be found at, best first."""
    query = sa.select(Grade).where(Grade.commodity_id == order.commodity_id)
    if order.buyer_id is not None:
        query = query.where(sa.or_(Grade.buyer_id.is_(None), Grade.buyer_id == order.buyer_id))
    else:
        query = query.where(Grade.buyer_id.is_(None))
    return list(session.scalars(query.order_by(Grade.rank, Grade.code, Grade.id)).all())


def _closed(order: GroupOrder) -> None:
    if is_settled(order) or order.status == "fulfilled":
        raise SettlementError("already_settled", f"order {order.id} is already settled")
    if order.status != "closed":
        raise SettlementError("not_closed", f"order {order.id} is {order.status}, not closed")


def _settled(order: GroupOrder) -> None:
    if not is_settled(order):
        raise SettlementError("not_settled", f"order {order.id} is not settled")


def _own(session: so.Session, order_id: int, member: Contact) -> Commitment:
    order = orders._lock_order(session, order_id)
    _settled(order)
    item = commitment_of(session, order, member)
    if item is None:
        raise SettlementError("no_commitment", f"contact {member.id} has nothing in order {order.id}")
    if item.payout is None:
        raise SettlementError("no_delivery", f"contact {member.id} is owed nothing in order {order.id}")
    return item


def _member(session: so.Session, order: GroupOrder, member: str | int) -> Commitment:
    """The commitment of a contact id, or of a position or phone as a leader typed it."""
    rows = members(session, order)
    if isinstance(member, int):
        found = next((item for item in rows if item.contact_id == member), None)
    elif _POSITION.fullmatch(member.strip()):
        position = int(member.strip())
        found = rows[position - 1] if 1 <= position <= len(rows) else None
    else:
        region = order.group.market.country if order.group.market else "KE"
        try:
            phone = normalize_phone(member, region)
        except ValueError:
            phone = ""
        found = next((item for item in rows if item.contact.phone == phone), None)
    if found is None:
        raise SettlementError("no_member", f"{member!r} is not a committed member of order {order.id}")
    return found


def _grade(session: so.Session, order: GroupOrder, grade: str | int) -> Grade:
    for known in grades_for(session, order):
        if known.id == grade or (isinstance(grade, str) and known.code.lower() == grade.strip().lower()):
            return known
    raise SettlementError("bad_grade", f"grade {grade!r} is not one of {order.commodity_id}'s")
