"""Farmer-facing sentences shared by USSD screens, SMS replies and bulletins."""

from __future__ import annotations

import datetime as dt

from smsgw.i18n import N_, Text
from smsgw.messaging.encoding import normalize
from smsgw.models import Subscription
from smsgw.services import prices
from smsgw.services.prices import Quote
from smsgw.services.quantities import quantity_phrase
from smsgw.services.subscriptions import MAX_ALERTS


def price_line(
    t: Text,
    quote: Quote,
    best: Quote | None,
    budget: int = 160,
    *,
    today: dt.date | None = None,
    fresh: bool = True,
) -> str:
    """``Maize Nakuru 14 Nov: KSh 4,300/90kg bag, +3% in a week. Best: Eldoret KSh 4,500 (126 km)``.

    A price past its maximum age (``fresh=False``, see ``prices.is_fresh``) is never
    said as current: the line says there is no recent price and gives the last one with
    its full date (the year too when it is not this year). Falls back to short market
    names, then drops the best-market clause, so that the line fits ``budget``.
    """
    today = today or quote.day
    # Best first: full names, then short ones, with the best-market clause; only then the
    # line alone (full names, then short), then cut.
    plain: list[str] = []
    for short in (False, True):
        market = quote.market.short_name if short else quote.market.name
        values = {
            "crop": quote.commodity.name(t.lang),
            "market": market,
            "date": t.full_date(quote.day, today),
            "price": t.money(quote.amount, quote.currency),
            "unit": quote.unit.label(t.lang),
        }
        if not fresh:
            line = t("No recent price for %(crop)s in %(market)s. Last: %(price)s/%(unit)s on %(date)s.", **values)
            if len(line) <= budget:
                return line
            plain.append(line)
            continue
        line = t("%(crop)s %(market)s %(date)s: %(price)s/%(unit)s", **values)
        if quote.week_change_pct is not None:
            line += ", " + t("%(change)s in a week", change=t.percent(quote.week_change_pct))
        plain.append(line)
        if best is not None:
            best_name = best.market.short_name if short else best.market.name
            with_best = (
                line
                + ". "
                + t(
                    "Best: %(market)s %(price)s (%(km)s km)",
                    market=best_name,
                    price=t.money(best.amount, best.currency),
                    km=t.number(round(best.distance_km or 0)),
                )
            )
            if len(with_best) <= budget:
                return with_best
    for line in plain:
        if len(line) <= budget:
            return line
    return plain[-1][:budget]


def price_answer(
    t: Text, session, quote: Quote, today: dt.date, settings, budget: int = 160
) -> str:
    """The answer to "what is the price": the line for ``quote`` as of ``today``.

    Freshness and the nearby radius come from ``settings`` (``prices.price_max_age``);
    a stale price gets no "best" clause, since it is not a current price to compare.
    """
    fresh = prices.quote_is_fresh(quote, today, settings)
    best = prices.best_nearby(session, quote, settings, as_of=today) if fresh else None
    return price_line(t, quote, best, budget, today=today, fresh=fresh)


def _digits(value) -> int:
    return 0 if value == value.to_integral_value() else 1


ORDER_ERRORS = {
    "not_leader": N_("Only the group leader can do that."),
    "not_member": N_("You are not a member of this order's group."),
    "not_open": N_("This order is closed. No more changes."),
    "deadline_passed": N_("The deadline for this order has passed."),
    "bad_quantity": N_("That quantity is not possible. Please check it."),
    "bad_price": N_("That price is not possible. Please check it."),
    "bad_deadline": N_("That deadline is not possible."),
    "no_commitment": N_("You have no commitment in this order."),
    "not_found": N_("No such order. Check the order number."),
}


def order_error(t: Text, code: str) -> str:
    """Why an order action was refused, in one line."""
    return t(ORDER_ERRORS.get(code, ORDER_ERRORS["not_found"]))


def quantity(t: Text, value) -> str:
    """A quantity with a decimal only when it has one."""
    return t.number(value, _digits(value))


def order_label(t: Text, order) -> str:
    """``#12 Sell Maize`` for order lists."""
    verb = t("Sell") if order.kind == "sell" else t("Buy")
    return f"#{order.id} {verb} {order.commodity.short(t.lang)}"


def order_summary(t: Text, order, totals, mine, reference=None) -> str:
    """An order's terms, where the group stands, the caller's quantity, the market price."""
    price = t.money(totals.unit_price, order.currency) if totals.unit_price else "-"
    text = t(
        "Order %(id)s %(crop)s %(price)s/%(unit)s by %(date)s. Total %(total)s/%(target)s (%(pct)s%%).",
        id=order.id,
        crop=order.commodity.short(t.lang),
        price=price,
        unit=order.unit.label(t.lang),
        date=t.date(order.deadline.date()),
        total=quantity(t, totals.total),
        target=quantity(t, totals.target),
        pct=totals.percent,
    )
    if mine is not None:
        text += " " + t("You: %(qty)s.", qty=quantity(t, mine.order_quantity))
    if reference is not None:
        text += " " + t("Market: %(price)s.", price=t.money(reference, order.currency))
    return text


def total_now(t: Text, order, total) -> str:
    """The END screen after a commitment changes."""
    return t(
        "Done. Group total for order %(id)s is now %(total)s/%(target)s. An SMS receipt follows.",
        id=order.id,
        total=quantity(t, total),
        target=quantity_phrase(t, order.target_quantity, order.unit),
    )


ALERTS_FULL = N_(
    "Not added: %(count)s alerts is the most we send a day. Yours: %(alert)s. Send UNSUB and a crop to remove one."
)


def alerts_full(t: Text, subs: list[Subscription]) -> str:
    """Why an alert was not added, naming the farmer's alerts, within one SMS or USSD screen
    (short crop names when the full ones do not fit)."""
    text = ""
    for short in (False, True):
        names = ", ".join(
            f"{sub.commodity.short(t.lang) if short else sub.commodity.name(t.lang)} {sub.market.short_name}"
            for sub in subs
        )
        text = t(ALERTS_FULL, count=MAX_ALERTS, alert=names)
        if len(normalize(text, t.lang)) <= 160:
            break
    return text
