"""Bulletin texts: as much useful price news as fits one GSM-7 SMS in the farmer's language."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.conversations.texts import grades_sms
from smsgw.i18n import Text
from smsgw.messaging.encoding import encode_for_sms
from smsgw.models import Buyer, BuyOffer, Contact, Market
from smsgw.services import prices
from smsgw.services.catalog import grades_for

MAX_ITEMS = 3
BUDGET = 160
# The best nearby market is named only when it pays this much more than the farmer's
# market: a smaller gap is eaten by transport.
TRANSPORT_MARGIN_PCT = 5


def _fits(text: str, lang: str) -> bool:
    encoded = encode_for_sms(text, lang)
    return encoded.encoding == "gsm7" and encoded.units <= BUDGET


def _assemble(head: str, items: list[list[str]], lang: str) -> str | None:
    """Head plus, per item, its essential part and then optional parts while they fit."""
    if not items:
        return None
    parts = [[item[0]] for item in items]
    text = head + " " + "; ".join(p[0] for p in parts)
    while not _fits(text, lang) and len(parts) > 1:
        parts.pop()
        text = head + " " + "; ".join(p[0] for p in parts)
    for level in range(1, max(len(item) for item in items)):
        for index, item in enumerate(items[: len(parts)]):
            if level < len(item):
                trial = [list(p) for p in parts]
                trial[index].append(item[level])
                candidate = head + " " + "; ".join(" ".join(p) for p in trial)
                if _fits(candidate, lang):
                    parts, text = trial, candidate
    return text if _fits(text, lang) else None


def _quotes(session: so.Session, sub, day: dt.date, cache: dict | None) -> tuple:
    """The latest quote and best nearby market for one alert, memoised across a run."""
    key = (sub.commodity_id, sub.market_id, day)
    if cache is not None and key in cache:
        return cache[key]
    quote = prices.latest_quote(session, sub.commodity, sub.market, day)
    found = (quote, prices.best_nearby(session, quote) if quote else None)
    if cache is not None:
        cache[key] = found
    return found


def daily_text(
    session: so.Session, contact: Contact, day: dt.date, stale_days: int, cache: dict | None = None
) -> str | None:
    """Today's prices for the contact's alerts, or None when nothing fresh is known.

    ``cache`` (one dict per bulletin run) keeps each market's quote once for all its
    subscribers instead of querying it again for every one of them.
    """
    t = Text(contact.language)
    items: list[list[str]] = []
    for sub in contact.subscriptions[:MAX_ITEMS]:
        quote, best = _quotes(session, sub, day, cache)
        if quote is None or (day - quote.day).days > stale_days:
            continue  # an old price sent as if new misleads more than silence
        core = f"{sub.commodity.short(t.lang)} {sub.market.short_name} {t.money(quote.amount, quote.currency)}/{quote.unit.label(t.lang)}"
        if quote.day != day:
            core += f" ({t.date(quote.day)})"
        extras = []
        if quote.week_change_pct is not None:
            extras.append(t.percent(quote.week_change_pct))
        if (
            best is not None
            and (best.amount - quote.amount) * 100 >= quote.amount * TRANSPORT_MARGIN_PCT
        ):
            extras.append(
                t(
                    "best %(market)s %(price)s",
                    market=best.market.short_name,
                    price=t.money(best.amount, best.currency),
                )
            )
        items.append([core, *extras])
    return _assemble(t("Prices %(date)s:", date=t.date(day)), items, t.lang)


def weekly_text(
    session: so.Session, contact: Contact, day: dt.date, stale_days: int, cache: dict | None = None
) -> str | None:
    """Open buyer offers for the contact's crops, else the grades of their first crop."""
    t = Text(contact.language)
    commodity_ids = {sub.commodity_id for sub in contact.subscriptions}
    country = contact.home_market.country if contact.home_market else None
    query = (
        sa.select(BuyOffer)
        .join(Buyer, Buyer.id == BuyOffer.buyer_id)
        .join(Market, Market.id == Buyer.market_id)
        .where(
            BuyOffer.commodity_id.in_(commodity_ids),
            BuyOffer.status == "open",
            BuyOffer.window_end >= day,
        )
        .order_by(BuyOffer.price.desc())
    )
    if country:
        query = query.where(Market.country == country)
    items = []
    for offer in session.scalars(query).all()[:MAX_ITEMS]:
        grade = f" {offer.grade.code}" if offer.grade else ""
        core = f"{offer.buyer.name}: {offer.commodity.short(t.lang)}{grade} {t.money(offer.price, offer.currency)}/{offer.unit.label(t.lang)}"
        items.append(
            [core, t("until %(date)s", date=t.date(offer.window_end)), offer.delivery_place]
        )
    if items:
        return _assemble(t("Buyers this week:"), items, t.lang)
    # No buyer is asking: the week's note is the grade rules of the first crop instead.
    for sub in contact.subscriptions[:1]:
        grades = grades_for(session, sub.commodity)
        if grades:
            return grades_sms(t, sub.commodity, grades)
    return None
