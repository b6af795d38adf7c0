"""Buyers' and suppliers' keywords (OFFER, MYOFFERS, WITHDRAW OFFER, YES <offer>), leaders'
OFFERS and OPEN OFFER, OPEN SELL|BUY with its price check, and YES <order> for a draft
order (table: ``router``)."""

from __future__ import annotations

import datetime as dt
import decimal

from smsgw.conversations import texts
from smsgw.conversations.sms import commands
from smsgw.conversations.sms.commands import Request, error_text
from smsgw.db import utcnow
from smsgw.i18n import N_, Text
from smsgw.models import Buyer, BuyOffer, Commodity, Contact, Grade, Market, ProducerGroup, Unit
from smsgw.services import buyers, catalog, offer_matching, offers, orders
from smsgw.services.quantities import quantity_phrase

DEFAULT_DAYS = 14
# An order opened on an offer without a deadline runs a week, as OPEN SELL does.
ORDER_DAYS = 7
BUDGET = 160
OFFER_FORMAT = N_("Format: OFFER MAIZE G1 4400 500 BAG90 NAKURU 14 (crop, grade, price, quantity, unit, market, days)")
BUYER_HELP = N_(
    "Buyers: OFFER MAIZE G1 4400 500 BAG90 NAKURU 14 (crop grade price qty unit market days), "
    "MYOFFERS, WITHDRAW OFFER 12, YES 12"
)
NOT_BUYER = N_("Only registered buyers can post offers. Send HELP for the commands.")
TAKE_ERRORS = {
    "not_found": N_("No such offer. Send OFFERS to see the offers for your group."),
    "not_open": N_("Offer %(id)s is closed, used up or withdrawn."),
    "wrong_country": N_("Offer %(id)s is from a buyer in another country. Your group cannot take it."),
    "wrong_currency": N_(
        "Offer %(id)s is paid in %(currency)s, not in your group's currency. Your group cannot take it."
    ),
    "too_much": N_("Offer %(id)s has only %(left)s left. Send a smaller quantity."),
    "wrong_crop": N_("Your group does not grow the crop of offer %(id)s."),
    "too_far": N_("Your group is too far from the delivery market of offer %(id)s."),
}
OFFER_ERRORS = {
    "not_found": N_("You have no offer %(id)s. Send MYOFFERS to see yours."),
    "not_pending": N_("Offer %(id)s is not waiting for a confirmation."),
    "not_open": N_("Offer %(id)s is already closed or withdrawn."),
    "wrong_crop": N_("Suppliers quote inputs and buyers offer for produce: check the crop."),
    "wrong_market": N_("That market is not in your country."),
}


def _buyer(request: Request) -> Buyer | None:
    return buyers.buyer_for_contact(request.db, request.contact)


def help_or_buyer_help(request: Request) -> str:
    """HELP (and anything unreadable): a buyer's own commands for a buyer, else the farmer's."""
    if _buyer(request) is not None:
        return request.t(BUYER_HELP)
    return commands._help(request)


def _days(args: tuple[str, ...], default: int) -> int:
    numbers = [int(word) for word in args if word.isdigit() and len(word) <= 4]
    return max(1, min(numbers[0], offer_matching.MAX_DAYS)) if numbers else default


def _grade(request: Request, commodity: Commodity) -> Grade | None:
    words = {word.upper() for word in request.parsed.args}
    return next((g for g in catalog.grades_for(request.db, commodity) if g.code.upper() in words), None)


def _offer_error(t: Text, error: offers.OfferError, offer_id: int | None = None) -> str:
    if error.code in OFFER_ERRORS:
        return t(OFFER_ERRORS[error.code], id=offer_id or "")
    if error.code == "bad_amount":
        return t(texts.ORDER_ERRORS["bad_quantity"])
    return t(OFFER_FORMAT)


def _offer(request: Request) -> str:
    """OFFER ...: a buyer posts an offer (a supplier a quote); bare, it lists."""
    t, parsed = request.t, request.parsed
    buyer = _buyer(request)
    if buyer is None:
        if request.contact is not None and orders.led_groups(request.db, request.contact):
            return _offers(request)
        return t(NOT_BUYER)
    if parsed.quantity is None and parsed.price is None:
        return _my_offers(request, buyer)
    commodity = request.commodity()
    if commodity is None or parsed.quantity is None or parsed.price is None:
        return t(OFFER_FORMAT)
    unit = request.db.get_one(Unit, parsed.unit_id) if parsed.unit_id else commodity.default_unit
    price = parsed.price
    if parsed.price_unit_id and parsed.price_unit_id != unit.id:
        per = request.db.get_one(Unit, parsed.price_unit_id)
        if per.base != unit.base:
            return error_text(t, "unknown_unit")
        price = (price * unit.factor / per.factor).quantize(decimal.Decimal("0.01"))
    market = request.db.get(Market, parsed.market_id) if parsed.market_id else None
    today = request.today
    try:
        offer = offers.post_offer(
            request.db, buyer=buyer, commodity=commodity, quantity=parsed.quantity, unit=unit, price=price,
            window_start=today, window_end=today + dt.timedelta(days=_days(parsed.args, DEFAULT_DAYS)),
            grade=_grade(request, commodity), market=market, settings=request.settings,
        )
    except offers.OfferError as error:
        return _offer_error(t, error)
    return receipt(t, request, offer)


def receipt(t: Text, request: Request, offer: BuyOffer) -> str:
    """The buyer's receipt: posted (with how many groups heard), or waiting for YES."""
    values = {
        "id": offer.id, "qty": quantity_phrase(t, offer.quantity, offer.unit, offer.commodity),
        "price": t.money(offer.price, offer.currency),
        "date": t.date(offer.window_end),
    }
    if offer.status == "pending":
        market = offer.market or offer.buyer.market
        reference = offers.reference_price(request.db, offer.commodity, offer.unit, market, request.today)
        return t(
            "Offer %(id)s: %(price)s is far from the market price %(ref)s. Send YES %(id)s to post it, "
            "or WITHDRAW OFFER %(id)s.",
            ref=t.money(reference or 0, offer.currency), **values,
        )
    groups = len(offers.groups_for(request.db, offer, request.settings))
    return t(
        "Offer %(id)s posted: %(qty)s at %(price)s until %(date)s. Groups told: %(count)s.",
        count=groups, **values,
    )


def _line(t: Text, offer: BuyOffer) -> str:
    state = t("wait YES") if offer.status == "pending" else t("left %(qty)s", qty=t.number(offers.remaining(offer)))
    return f"{offer.id} {offer.commodity.short(t.lang)} {t.money(offer.price, offer.currency)} {state}"


def _fit(head: str, lines: list[str], tail: str = "") -> str:
    text = head
    for line in lines:
        if len(text) + len(line) + 2 + len(tail) + 1 > BUDGET:
            break
        text += (" " if text == head else "; ") + line
    return f"{text} {tail}".strip() if tail else text


def _my_offers(request: Request, buyer: Buyer) -> str:
    t = request.t
    mine = offers.offers_of(request.db, buyer, request.today)
    if not mine:
        return t("You have no open offers. Example: OFFER MAIZE G1 4400 500 BAG90 NAKURU 14")
    return _fit(t("Your offers:"), [_line(t, offer) for offer in mine])


def _offers(request: Request) -> str:
    """OFFERS: open offers and quotes the leader's groups may take, with how to take one."""
    t, contact = request.t, request.contact
    if contact is None or not orders.led_groups(request.db, contact):
        return texts.order_error(t, "not_leader")
    found = offers.open_offers_for(request.db, contact, request.today, request.settings)
    if not found:
        return t("No buyer's offer for your group now. We will send you an SMS when one comes.")
    lines = [
        f"{o.id} {o.buyer.name[:14]} {o.commodity.short(t.lang)} {t.money(o.price, o.currency)} "
        f"x{t.number(offers.remaining(o))}"
        for o in found
    ]
    return _fit(t("Offers:"), lines, t("Take one: OPEN OFFER <number> <qty>"))


def _unoffer(request: Request) -> str:
    """WITHDRAW OFFER <offer>: the buyer takes it back."""
    t, number = request.t, request.parsed.order_ref
    buyer = _buyer(request)
    if buyer is None:
        return t(NOT_BUYER)
    if not number:
        return t("Which offer? Example: WITHDRAW OFFER 12")
    try:
        offers.withdraw_offer(request.db, buyer, number, utcnow())
    except offers.OfferError as error:
        return _offer_error(t, error, number)
    return t("Offer %(id)s is withdrawn. Groups can no longer take it.", id=number)


def _confirm(request: Request) -> str:
    """YES <number>: a buyer's pending offer is posted, or a leader's draft order opens."""
    t, number, contact = request.t, request.parsed.order_ref, request.contact
    if not number or contact is None:
        return t("Which number? Example: YES 12")
    buyer = _buyer(request)
    try:
        done = offer_matching.confirm(request.db, contact, number, buyer=buyer, now=utcnow(),
                                      settings=request.settings)
    except offers.OfferError as error:
        return _offer_error(t, error, number)
    except orders.OrderError as error:
        if error.code == "not_found" or (buyer is not None and error.code == "not_leader"):
            return t("Nothing waits for a YES with number %(id)s.", id=number)
        return texts.order_error(t, error.code)
    if done.offer is not None:
        return receipt(t, request, done.offer)
    return t("Order %(id)s is open. Members will get an SMS.", id=number)


def take_error(t: Text, error: offer_matching.TakeError) -> str:
    """Why the group cannot take the offer, in one SMS."""
    if error.code in ("not_leader", "bad_quantity"):
        return texts.order_error(t, error.code)
    offer = error.offer
    values: dict[str, object] = {"id": offer.id if offer else ""}
    if offer is not None:
        values.update(currency=offer.currency, left=quantity_phrase(t, offers.remaining(offer), offer.unit))
    return t(TAKE_ERRORS.get(error.code, TAKE_ERRORS["not_found"]), **values)


def open_offer(request: Request, contact: Contact, groups: list[ProducerGroup], numbers: list[decimal.Decimal]) -> str:
    """OPEN OFFER <offer> <quantity> [days]: an order of the leader's group against the offer."""
    t = request.t
    if len(numbers) < 2 or not (0 < numbers[0] < 2**31 and numbers[0] == int(numbers[0])):
        return t("Format: OPEN OFFER <offer number> <quantity> [days]")
    offer_id, quantity = int(numbers[0]), numbers[1]
    # The order runs as long as asked (the service keeps it within its limits), else a week.
    days = int(numbers[2]) if len(numbers) > 2 else ORDER_DAYS
    offer = request.db.get(BuyOffer, offer_id)
    # The first of the leader's groups that may take it; else the refusal for the first.
    chosen = groups[0]
    for group in groups:
        try:
            offer_matching.check_takeable(request.db, offer, group, request.today, request.settings)
        except offer_matching.TakeError:
            continue
        chosen = group
        break
    try:
        order = offer_matching.take_offer(
            request.db, contact, chosen, offer_id, quantity, days=days, now=utcnow(), today=request.today,
            settings=request.settings,
        )
    except offer_matching.TakeError as error:
        return take_error(t, error)
    except orders.OrderError as error:
        return texts.order_error(t, error.code)
    return t("Order %(id)s is open for offer %(offer)s. Members and the buyer get an SMS.", id=order.id,
             offer=offer_id)


def open_by_hand(
    request: Request, contact: Contact, group: ProducerGroup, *, kind: str, commodity: Commodity,
    quantity: decimal.Decimal, price: decimal.Decimal, days: int,
) -> str:
    """OPEN SELL|BUY: opened, or a draft waiting for YES when the price is far from the market."""
    t = request.t
    try:
        opened = offer_matching.open_by_hand(
            request.db, contact, group, kind=kind, commodity=commodity, quantity=quantity,
            unit=commodity.default_unit, price=price, days=days, now=utcnow(), today=request.today,
            settings=request.settings,
        )
    except orders.OrderError as error:
        return texts.order_error(t, error.code)
    order = opened.order
    if opened.draft:
        return t(
            "Order %(id)s: %(price)s is far from the market price %(ref)s. Send YES %(id)s to open it, "
            "or CANCEL %(id)s.",
            id=order.id, price=t.money(price, order.currency), ref=t.money(opened.reference or 0, order.currency),
        )
    return t("Order %(id)s is open. Members will get an SMS.", id=order.id)
