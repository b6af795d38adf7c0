"""After an order closes: DELIVERED, SETTLE and REF for leaders; PAID and DISPUTE for members.

``DELIVERED <order> <member> <qty> [grade]`` (member: their number in the leader's list, or
their phone), ``SETTLE <order> <final price> [date paid]``, ``REF <order> <member> <code>``,
``PAID <order>``, ``DISPUTE <order> <what is wrong>``; local words in keywords.py. The
arguments are read from the SMS as typed (dates and payment codes keep their marks).
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from smsgw.conversations import texts
from smsgw.conversations.sms.commands import Request, error_text
from smsgw.conversations.sms.keywords import (
    FILLER_WORDS,
    ORDER_WORDS,
    find_keyword,
    normalize_text,
    parse_number,
)
from smsgw.conversations.sms.sale_days import DAYS_AGO
from smsgw.db import utcnow
from smsgw.i18n import N_, Text
from smsgw.services import orders, sales, settlement
from smsgw.services.quantities import quantity_phrase

SETTLEMENT_ERRORS = {
    "not_closed": N_("Close the order first: deliveries and payouts come after close."),
    "already_settled": N_("This order is already settled."),
    "not_settled": N_("This order is not settled yet. Your leader sends the statements."),
    "missing_delivery": N_("Order %(id)s: %(n)s members have no delivery recorded. For none, send DELIVERED %(id)s "
                           "<member> 0"),
    "no_delivery": N_("No delivery is recorded for this member or order."),
    "no_member": N_("No such member in this order. Give their number in the list or their phone."),
    "bad_reference": N_("That payment code is not valid: 3 to 40 letters or digits."),
    "bad_fee": N_("The group fee must be below the final price."),
    "bad_date": N_("That date is not possible. Write the day the buyer paid, like 4/12."),
    "bad_grade": N_("That grade is not known for this crop."),
}
DELIVERED_FORMAT = N_("Format: DELIVERED <order> <member number or phone> <quantity> [grade]")
SETTLE_FORMAT = N_("Format: SETTLE <order> <final price> [date paid, like 4/12]")
REF_FORMAT = N_("Format: REF <order> <member number or phone> <payment code>")
DELIVERED = N_("Order %(id)s: %(name)s delivered %(qty)s. Deliveries recorded: %(n)s of %(count)s.")
SETTLED = N_("Order %(id)s settled: %(count)s members, %(total)s in all. Statements sent. "
             "Send REF %(id)s <member> <code> for each payment.")
REFERENCE = N_("Order %(id)s: payment ref %(ref)s for %(name)s recorded. They are asked to confirm.")
CONFIRMED = N_("Thank you. Order %(id)s: your payment is confirmed.")
DISPUTED = N_("Order %(id)s: your dispute is recorded. Your leader and the operator will look at it.")

# Words for today, in the four languages (days before it: ``sale_days.DAYS_AGO``).
TODAY = frozenset({"today", "leo", "aujourdhui", "auj", "tey"})
_LEADING_NUMBER = re.compile(r"[^0-9]*([0-9][0-9.,]*)")


def refused(t: Text, error: orders.OrderError, order_id: int | None = None) -> str:
    """Why a settlement action was refused, in one line."""
    if error.code in SETTLEMENT_ERRORS:
        count = error.count if isinstance(error, settlement.SettlementError) else 0
        return t(SETTLEMENT_ERRORS[error.code], id=order_id or "", n=count)
    return texts.order_error(t, error.code)


def arguments(request: Request) -> list[str]:
    """The words of the SMS after its keyword and order number, as typed."""
    words = request.message.text.split()
    for i, word in enumerate(words):
        first = normalize_text(word).split()[:1]
        found = find_keyword(first[0], near=True) if first else None
        if found is not None and found.command == request.parsed.command:
            rest = words[i + 1:]
            break
    else:
        return []
    while rest and normalize_text(rest[0]) in ORDER_WORDS | FILLER_WORDS:
        rest = rest[1:]
    if rest and normalize_text(rest[0]) == str(request.parsed.order_ref):
        rest = rest[1:]
    return rest


def number(word: str) -> Decimal | None:
    """The number a word starts with ("10", "10bags", "ksh4,400"), or None."""
    found = _LEADING_NUMBER.match(word.lower())
    return parse_number(found.group(1).rstrip(".,")) if found else None


def paid_day(words: list[str], today: dt.date) -> dt.date | None:
    """The day the buyer paid: today when not given; None when it cannot be read."""
    if not words:
        return today
    word = normalize_text(" ".join(words)).replace(" ", "")
    if word in TODAY:
        return today
    ago = DAYS_AGO.get((word,))
    typed = sales.TypedDay(days_ago=ago) if ago is not None else sales.read_day(words[0])
    try:
        # As for a sale: "28/12" sent on 2 January is last year's.
        return typed.date(today) if typed is not None else None
    except sales.SaleError:
        return None


def _delivered(request: Request) -> str:
    t, contact, order_id = request.t, request.contact, request.parsed.order_ref
    if contact is None or not order_id:
        return texts.order_error(t, "not_leader") if contact is None else error_text(t, "missing_order")
    words = arguments(request)
    amount = number(words[1]) if len(words) > 1 else None
    if amount is None:
        return t(DELIVERED_FORMAT)
    grade = words[2] if len(words) > 2 else None
    try:
        item = settlement.deliver(request.db, order_id, words[0], amount, leader=contact, grade=grade, now=utcnow())
    except orders.OrderError as error:
        return refused(t, error, order_id)
    done, count = settlement.delivery_progress(request.db, item.order)
    qty = quantity_phrase(t, item.delivered_quantity or Decimal(0), item.order.unit)
    if item.delivered_grade is not None:
        qty = f"{qty} {item.delivered_grade.code}"
    return t(DELIVERED, id=order_id, name=item.contact.name or item.contact.phone, qty=qty, n=done, count=count)


def _settle(request: Request) -> str:
    t, contact, order_id = request.t, request.contact, request.parsed.order_ref
    if contact is None or not order_id:
        return texts.order_error(t, "not_leader") if contact is None else error_text(t, "missing_order")
    words = arguments(request)
    price = number(words[0]) if words else None
    if price is None:
        return t(SETTLE_FORMAT)
    day = paid_day(words[1:], request.sent_day)
    if day is None:
        return t(SETTLEMENT_ERRORS["bad_date"])
    try:
        done = settlement.settle(request.db, order_id, final_price=price, paid_on=day,
                                 leader=contact, settings=request.settings, now=utcnow())
    except orders.OrderError as error:
        return refused(t, error, order_id)
    return t(SETTLED, id=order_id, count=done.members, total=t.money(done.total, done.order.currency))


def _payref(request: Request) -> str:
    t, contact, order_id = request.t, request.contact, request.parsed.order_ref
    if contact is None or not order_id:
        return texts.order_error(t, "not_leader") if contact is None else error_text(t, "missing_order")
    words = arguments(request)
    if len(words) < 2:
        return t(REF_FORMAT)
    try:
        item = settlement.record_reference(request.db, order_id, words[0], words[1], leader=contact, now=utcnow())
    except orders.OrderError as error:
        return refused(t, error, order_id)
    return t(REFERENCE, id=order_id, ref=item.payment_reference, name=item.contact.name or item.contact.phone)


def _paid(request: Request) -> str:
    t, contact, order_id = request.t, request.contact, request.parsed.order_ref
    if not order_id:
        return error_text(t, "missing_order")
    if contact is None:
        return texts.order_error(t, "no_commitment")
    try:
        settlement.confirm(request.db, order_id, contact, now=utcnow())
    except orders.OrderError as error:
        return refused(t, error, order_id)
    return t(CONFIRMED, id=order_id)


def _dispute(request: Request) -> str:
    t, contact, order_id = request.t, request.contact, request.parsed.order_ref
    if not order_id:
        return error_text(t, "missing_order")
    if contact is None:
        return texts.order_error(t, "no_commitment")
    try:
        settlement.dispute(request.db, order_id, contact, " ".join(arguments(request)), now=utcnow(),
                           event_key=f"sms:{request.message.gateway_id}")
    except orders.OrderError as error:
        return refused(t, error, order_id)
    return t(DISPUTED, id=order_id)
