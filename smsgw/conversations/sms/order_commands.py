"""Group keywords: OPEN, TOTAL, CLOSE, CANCEL and MSG for leaders; JOIN, WITHDRAW for members."""

from __future__ import annotations

import decimal

from smsgw.conversations import texts
from smsgw.conversations.sms import keywords, offer_commands
from smsgw.conversations.sms.commands import Request, _stop, error_text
from smsgw.conversations.sms.keywords import find_keyword, has_strong_stop, normalize_text
from smsgw.conversations.sms.parser import load_vocabulary, parse
from smsgw.db import utcnow
from smsgw.models import Commodity
from smsgw.services import group_messages, orders

KIND_WORDS = {
    "sell": "sell",
    "vendre": "sell",
    "uza": "sell",
    "jaay": "sell",
    "buy": "buy",
    "acheter": "buy",
    "achat": "buy",
    "nunua": "buy",
    "jend": "buy",
}
OFFER_WORDS = keywords.OFFER_WORDS
DEFAULT_DAYS = 7
OPEN_FORMAT = "OPEN SELL 200 MAIZE 4300 14"


def _numbers(args: tuple[str, ...]) -> list[decimal.Decimal]:
    found = []
    for word in args:
        try:
            value = decimal.Decimal(word.replace(",", ""))
        except decimal.InvalidOperation:
            continue
        if value.is_finite():  # "NaN" and "Infinity" parse too, and break every comparison
            found.append(value)
    return found


def _refused(request: Request, error: orders.OrderError) -> str:
    return texts.order_error(request.t, error.code)


def _crop_in(request: Request, words: tuple[str, ...]) -> Commodity | None:
    """The crop named among ``words``, with the parser's typo tolerance."""
    found = parse(
        "PRICE " + " ".join(w for w in words if not w.replace(",", "").replace(".", "").isdigit()),
        load_vocabulary(request.db),
    )
    return request.db.get(Commodity, found.commodity_id) if found.commodity_id else None


def _open(request: Request) -> str:
    """OPEN [SELL|BUY] <qty> <crop> <price> [days], or OPEN OFFER <offer> <qty> [days]."""
    t, contact = request.t, request.contact
    groups = orders.led_groups(request.db, contact) if contact else []
    if contact is None or not groups:
        return texts.order_error(t, "not_leader")
    args = request.parsed.args
    if args and args[0].lower() in OFFER_WORDS:
        return offer_commands.open_offer(request, contact, groups, _numbers(args[1:]))
    commodity = request.commodity() or _crop_in(request, args)
    numbers = [n for n in _numbers(args) if n > 0]
    if request.parsed.quantity:
        numbers.insert(0, request.parsed.quantity)
    if commodity is None or len(numbers) < 2:
        return t("Format: %(example)s (quantity, crop, price, days)", example=OPEN_FORMAT)
    kind = next(
        (KIND_WORDS[w.lower()] for w in request.parsed.args if w.lower() in KIND_WORDS),
        "buy" if commodity.kind == "input" else "sell",
    )
    days = int(min(numbers[2], decimal.Decimal(60))) if len(numbers) > 2 else DEFAULT_DAYS
    # The price is checked against the market's: far from it, a draft waits for YES <order>.
    return offer_commands.open_by_hand(
        request, contact, groups[0], kind=kind, commodity=commodity, quantity=numbers[0], price=numbers[1],
        days=max(1, min(days, 60)),
    )


def _order_id(request: Request) -> int | None:
    return request.parsed.order_ref


def _total(request: Request) -> str:
    order_id = _order_id(request)
    if not order_id:
        return error_text(request.t, "missing_order")
    order = orders.get_order(request.db, order_id)
    if order is None:  # a number was given: say it matches no order, not "add its number"
        return texts.order_error(request.t, "not_found")
    return texts.order_summary(request.t, order, orders.totals(request.db, order), None)


def _close(request: Request) -> str:
    order_id = _order_id(request)
    if not order_id or request.contact is None:
        return error_text(request.t, "missing_order")
    try:
        orders.close(request.db, order_id, request.contact, now=utcnow())
    except orders.OrderError as error:
        return _refused(request, error)
    return request.t("Order %(id)s is closed. Members are told by SMS.", id=order_id)


def _cancel(request: Request) -> str:
    """CANCEL <order>: a leader calls the order off; committed members are told."""
    order_id = _order_id(request)
    if not order_id or request.contact is None:
        return error_text(request.t, "missing_order")
    try:
        orders.cancel(request.db, order_id, request.contact, now=utcnow())
    except orders.OrderError as error:
        return _refused(request, error)
    return request.t("Order %(id)s is cancelled. Members are told by SMS.", id=order_id)


def _join(request: Request) -> str | None:
    quantity = request.parsed.quantity
    order_id = _order_id(request)
    if not order_id or request.contact is None:
        return error_text(request.t, "missing_order")
    if quantity is None or quantity <= 0:
        return error_text(request.t, "bad_quantity")
    try:
        orders.commit(
            request.db,
            order_id,
            request.contact,
            quantity,
            now=utcnow(),
            event_key=f"sms:{request.message.gateway_id}",
        )
    except orders.OrderError as error:
        return _refused(request, error)
    return None  # the service's receipt SMS is the answer


def _withdraw(request: Request) -> str | None:
    order_id = _order_id(request)
    if not order_id or request.contact is None:
        return error_text(request.t, "missing_order")
    try:
        orders.withdraw(
            request.db,
            order_id,
            request.contact,
            now=utcnow(),
            event_key=f"sms:{request.message.gateway_id}",
        )
    except orders.OrderError as error:
        return _refused(request, error)
    return None


def _after_keyword(text: str) -> str:
    """The SMS as typed after its MSG keyword (greetings or a service word may come first)."""
    words = text.split()
    for i, word in enumerate(words):
        first = normalize_text(word).split()[:1]
        found = find_keyword(first[0], near=True) if first else None
        if found is not None and found.command == "tell":
            return " ".join(words[i + 1:])
    return ""


def _not_a_leader(request: Request) -> str | None:
    # Only a leader's MSG is for the members: anyone else's STOP in it is their own.
    if has_strong_stop(list(request.parsed.args)):
        return _stop(request)
    return texts.order_error(request.t, "not_leader")


def _tell(request: Request) -> str | None:
    """MSG <text>: the leader's text to every other member of the group, one SMS each."""
    t, contact = request.t, request.contact
    if contact is None:
        return _not_a_leader(request)
    try:
        sent = group_messages.send_to_group(
            request.db, contact, _after_keyword(request.message.text), request.message,
            cap=int(request.settings["GROUP_MESSAGES_PER_DAY"]), now=utcnow(),
        )
    except group_messages.GroupMessageError as error:
        if error.code == "not_leader":
            return _not_a_leader(request)
        if error.code == "empty":
            return t("Format: MSG <your message to the group>")
        if error.code == "too_long":
            return t("Too long for one SMS to each member: at most %(max)s characters.", max=error.limit)
        return t("Your group has had %(cap)s messages today. Please send again tomorrow.", cap=error.limit)
    return t("Sent to %(group)s. Members reached: %(count)s.", group=sent.group.name, count=sent.recipients)
