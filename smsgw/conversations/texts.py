"""Farmer-facing sentences shared by USSD screens, SMS replies and bulletins."""

from __future__ import annotations

from smsgw.i18n import N_, Text
from smsgw.models import Commodity, Grade
from smsgw.services.prices import Quote

LIMIT_NAMES = {
    "moisture": N_("moisture"),
    "foreign_matter": N_("foreign matter"),
    "inorganic_matter": N_("inorganic matter"),
    "broken": N_("broken"),
    "pest_damaged": N_("pest damage"),
    "rotten_diseased": N_("rotten"),
    "discoloured": N_("discoloured"),
    "aflatoxin": N_("aflatoxin"),
    "aflatoxin_b1": N_("aflatoxin B1"),
    "damaged": N_("damaged"),
    "filth": N_("filth"),
    "immature_shrivelled": N_("shrivelled"),
    "mouldy_rancid_decayed": N_("mouldy"),
    "other_varieties": N_("other varieties"),
    "out_of_class": N_("out of class"),
}


def price_line(t: Text, quote: Quote, best: Quote | None, budget: int = 160) -> str:
    """``Maize Nakuru 14 Nov: KSh 4,300/90kg bag, +3% in a week. Best: Eldoret KSh 4,500``.

    Falls back to short market names, then drops the best-market clause, so that the
    line fits ``budget`` characters in every language.
    """
    for short in (False, True):
        market = quote.market.short_name if short else quote.market.name
        line = t(
            "%(crop)s %(market)s %(date)s: %(price)s/%(unit)s",
            crop=quote.commodity.name(t.lang),
            market=market,
            date=t.date(quote.day),
            price=t.money(quote.amount, quote.currency),
            unit=quote.unit.label(t.lang),
        )
        if quote.week_change_pct is not None:
            line += ", " + t("%(change)s in a week", change=t.percent(quote.week_change_pct))
        if best is not None:
            best_name = best.market.short_name if short else best.market.name
            with_best = (
                line
                + ". "
                + t(
                    "Best: %(market)s %(price)s",
                    market=best_name,
                    price=t.money(best.amount, best.currency),
                )
            )
            if len(with_best) <= budget:
                return with_best
        if len(line) <= budget:
            return line
    return line[:budget]


def _limit(t: Text, limit) -> str:
    name = t(LIMIT_NAMES.get(limit.parameter, limit.parameter))
    parts = []
    if limit.min_value is not None:
        parts.append(f">={t.number(limit.min_value, _digits(limit.min_value))}")
    if limit.max_value is not None:
        parts.append(f"<={t.number(limit.max_value, _digits(limit.max_value))}")
    return f"{name} {' '.join(parts)}{limit.unit}"


def _digits(value) -> int:
    return 0 if value == value.to_integral_value() else 1


def grade_limits(t: Text, commodity: Commodity, grade: Grade) -> str:
    """A grade and its measurable limits, for a USSD screen."""
    head = t(
        "%(crop)s %(grade)s (%(standard)s), price %(diff)s:",
        crop=commodity.name(t.lang),
        grade=grade.code,
        standard=grade.standard,
        diff=t.percent(grade.price_diff_pct),
    )
    return head + "\n" + ", ".join(_limit(t, limit) for limit in grade.limits[:4])


def grade_sms(t: Text, commodity: Commodity, grade: Grade) -> str:
    """A grade's requirements as one SMS."""
    return t(
        "%(crop)s %(grade)s (%(standard)s): %(text)s Price %(diff)s.",
        crop=commodity.name(t.lang),
        grade=grade.code,
        standard=grade.standard,
        text=grade.requirement(t.lang),
        diff=t.percent(grade.price_diff_pct),
    )


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
        "Done. Group total for order %(id)s is now %(total)s/%(target)s %(unit)s. An SMS receipt follows.",
        id=order.id,
        total=quantity(t, total),
        target=quantity(t, order.target_quantity),
        unit=order.unit.label(t.lang),
    )


def grades_sms(t: Text, commodity: Commodity, grades: list[Grade]) -> str:
    """All grades of a commodity with their price differences and the best grade's limits, one SMS."""
    head = t("%(crop)s (%(standard)s):", crop=commodity.name(t.lang), standard=grades[0].standard)
    diffs = ", ".join(f"{g.code} {t.percent(g.price_diff_pct)}" for g in grades)
    text = f"{head} {diffs}."
    for limit in grades[0].limits:
        candidate = (
            f"{text} {grades[0].code}: {_limit(t, limit)}"
            if text.endswith(".")
            else f"{text}, {_limit(t, limit)}"
        )
        if len(candidate) > 160:
            break
        text = candidate
    return text
