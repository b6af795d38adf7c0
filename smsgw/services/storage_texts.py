"""Store or sell, said to a farmer: one SMS or USSD screen, and a short line for bulletins.

The evidence comes from ``services.storage``; here it is only worded. Poor odds and thin
data are said plainly, and every answer that gives odds ends "Not a guarantee".
"""

from __future__ import annotations

import datetime as dt

from babel.dates import format_date

from smsgw.i18n import N_, Text
from smsgw.messaging.encoding import normalize
from smsgw.models import Commodity, Market
from smsgw.services.storage import Advice

STORE = N_(
    "%(crop)s %(market)s: storing from %(start)s to %(end)s paid in %(paid)s of %(years)s years, "
    "median %(gain)s after losses; worst year %(worst)s. Not a guarantee."
)
SELL = N_(
    "%(crop)s %(market)s: storing from %(start)s rarely paid (best: to %(end)s, %(paid)s of %(years)s years, "
    "median %(gain)s). Selling at harvest did as well."
)
THIN = N_(
    "%(crop)s %(market)s: not enough price history to say if storing pays (%(years)s years, %(need)s needed)."
)
NO_SEASON = N_("No harvest months are recorded for %(crop)s here, so we cannot say if storing pays.")
# The weekly line of harvest-month bulletins: short, beside the day's prices.
BULLETIN_STORE = N_("Storing %(crop)s %(start)s-%(end)s paid %(paid)s of %(years)s yrs, median %(gain)s.")
BULLETIN_SELL = N_("Storing %(crop)s from %(start)s rarely paid (%(paid)s of %(years)s yrs).")


def month_name(t: Text, month: int) -> str:
    """The month's short name in the farmer's language (``Aug``, ``août``, ``Ago``)."""
    return normalize(format_date(dt.date(2000, month, 1), format="MMM", locale=t.lang), t.lang)


def answer(t: Text, advice: Advice, commodity: Commodity, market: Market) -> str:
    """The answer to STORE and the USSD screen: the odds, or why there are none."""
    crop = commodity.name(t.lang)
    if advice.verdict == "no_season" or advice.harvest is None:
        return t(NO_SEASON, crop=crop)
    if advice.best is None:
        return t(THIN, crop=crop, market=market.short_name, years=advice.years, need=advice.need)
    best = advice.best
    values = {
        "crop": crop,
        "market": market.short_name,
        "start": month_name(t, best.harvest),
        "end": month_name(t, best.sale),
        "paid": best.paid,
        "years": best.years,
        "gain": t.percent(best.median_gain * 100),
    }
    if advice.verdict == "store":
        return t(STORE, worst=t.percent(best.worst_gain * 100), **values)
    return t(SELL, **values)


def bulletin_line(t: Text, advice: Advice, commodity: Commodity) -> str | None:
    """The short weekly line for a harvest-month bulletin, or None without evidence."""
    best = advice.best
    if best is None:
        return None
    values = {
        "crop": commodity.short(t.lang),
        "start": month_name(t, best.harvest),
        "end": month_name(t, best.sale),
        "paid": best.paid,
        "years": best.years,
        "gain": t.percent(best.median_gain * 100),
    }
    message = BULLETIN_STORE if advice.verdict == "store" else BULLETIN_SELL
    return t(message, **values)
