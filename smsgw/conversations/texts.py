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


def price_line(t: Text, quote: Quote, best: Quote | None) -> str:
    """``Maize Nakuru 14 Nov: KSh 4,300/90kg bag, +3% in a week. Best: Eldoret KSh 4,500``."""
    line = t(
        "%(crop)s %(market)s %(date)s: %(price)s/%(unit)s",
        crop=quote.commodity.name(t.lang),
        market=quote.market.name,
        date=t.date(quote.day),
        price=t.money(quote.amount, quote.currency),
        unit=quote.unit.label(t.lang),
    )
    if quote.week_change_pct is not None:
        line += ", " + t("%(change)s in a week", change=t.percent(quote.week_change_pct))
    if best is not None:
        line += ". " + t("Best: %(market)s %(price)s", market=best.market.name, price=t.money(best.amount, best.currency))
    return line


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
    head = t("%(crop)s %(grade)s (%(standard)s), price %(diff)s:", crop=commodity.name(t.lang), grade=grade.code, standard=grade.standard, diff=t.percent(grade.price_diff_pct))
    return head + "\n" + ", ".join(_limit(t, limit) for limit in grade.limits[:4])


def grade_sms(t: Text, commodity: Commodity, grade: Grade) -> str:
    """A grade's requirements as one SMS."""
    return t("%(crop)s %(grade)s (%(standard)s): %(text)s Price %(diff)s.", crop=commodity.name(t.lang), grade=grade.code, standard=grade.standard, text=grade.requirement(t.lang), diff=t.percent(grade.price_diff_pct))
