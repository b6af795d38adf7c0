"""Bulletin texts: as much useful price news as fits one GSM-7 SMS in the farmer's language.

Pure composition over services and models, so ``services.bulletins`` uses it without
reaching up into the conversation layer; the admin's preview uses it too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.i18n import Text
from smsgw.messaging.encoding import encode_for_sms
from smsgw.models import Buyer, BuyOffer, Commodity, Market
from smsgw.services import prices, standard_texts, storage, storage_texts
from smsgw.services.catalog import grades_for

# What a composer is given as its freshness rule: the settings (per-commodity maximum
# age, ``prices.price_max_age``), or a number of days that caps every commodity.
MaxAge = Mapping[str, Any] | int | None
# One bulletin run's memo of ``_quotes``: (commodity id, market id, day) -> (latest quote, best nearby).
QuoteCache = dict[tuple[int, int, dt.date], tuple[prices.Quote | None, prices.Quote | None]]


class AlertView(Protocol):
    """What a composer reads of one alert: a ``Subscription`` or a bulletin run's stand-in."""

    @property
    def commodity_id(self) -> int: ...
    @property
    def market_id(self) -> int: ...
    @property
    def commodity(self) -> Commodity: ...
    @property
    def market(self) -> Market: ...


class SubscriberView(Protocol):
    """What a composer reads of a subscriber: a ``Contact``, or a run's read-only stand-in.

    Only these, so a bulletin run composes one text for everyone who shares them.
    """

    @property
    def language(self) -> str: ...
    @property
    def home_market(self) -> Market | None: ...
    @property
    def subscriptions(self) -> Sequence[AlertView]: ...


MAX_ITEMS = 3
BUDGET = 160
# The best nearby market is named only when it pays this much more than the farmer's
# market: a smaller gap is eaten by transport.
TRANSPORT_MARGIN_PCT = 5


def _fits(text: str, lang: str) -> bool:
    encoded = encode_for_sms(text, lang)
    return encoded.encoding == "gsm7" and encoded.units <= BUDGET


def _assemble(head: str, items: list[list[str]], lang: str, tail: str = "") -> str | None:
    """Head plus, per item, its essential part and then optional parts while they fit.

    ``tail`` (the weekly storage line) ends the text, its room kept before optional parts.
    """
    if not items:
        return None
    end = ". " + tail if tail else ""
    parts = [[item[0]] for item in items]
    text = head + " " + "; ".join(p[0] for p in parts)
    while not _fits(text + end, lang) and len(parts) > 1:
        parts.pop()
        text = head + " " + "; ".join(p[0] for p in parts)
    for level in range(1, max(len(item) for item in items)):
        for index, item in enumerate(items[: len(parts)]):
            if level < len(item):
                trial = [list(p) for p in parts]
                trial[index].append(item[level])
                candidate = head + " " + "; ".join(" ".join(p) for p in trial)
                if _fits(candidate + end, lang):
                    parts, text = trial, candidate
    return text + end if _fits(text + end, lang) else None


def _settings(max_age: MaxAge) -> Mapping[str, Any]:
    return max_age if isinstance(max_age, Mapping) else {}


def _fresh(commodity: Commodity, observed: dt.date, day: dt.date, max_age: MaxAge) -> bool:
    """``prices.is_fresh``, tightened by a whole-run cap in days when one is given."""
    if isinstance(max_age, int) and (day - observed).days > max_age:
        return False
    return prices.is_fresh(commodity, observed, day, _settings(max_age))


def _quotes(
    session: so.Session, sub: AlertView, day: dt.date, max_age: MaxAge, cache: QuoteCache | None
) -> tuple[prices.Quote | None, prices.Quote | None]:
    """The latest quote and best fresh nearby market for one alert, memoised across a run."""
    key = (sub.commodity_id, sub.market_id, day)
    if cache is not None and key in cache:
        return cache[key]
    quote = prices.latest_quote(session, sub.commodity, sub.market, day)
    best = prices.best_nearby(session, quote, _settings(max_age), as_of=day) if quote else None
    if best is not None and not _fresh(best.commodity, best.day, day, max_age):
        best = None
    found = (quote, best)
    if cache is not None:
        cache[key] = found
    return found


def daily_text(
    session: so.Session, contact: SubscriberView, day: dt.date, max_age: MaxAge = None, cache: QuoteCache | None = None
) -> str | None:
    """Today's prices for the contact's alerts, or None when nothing fresh is known.

    A price past its maximum age (``max_age``: the settings, or a cap in days) is left
    out: an old price sent as if new misleads more than silence. ``cache`` (one dict per
    bulletin run) keeps each market's quote once for all its subscribers.
    """
    t = Text(contact.language)
    items: list[list[str]] = []
    for sub in contact.subscriptions[:MAX_ITEMS]:
        quote, best = _quotes(session, sub, day, max_age, cache)
        if quote is None or not _fresh(quote.commodity, quote.day, day, max_age):
            continue
        price = f"{t.money(quote.amount, quote.currency)}/{quote.unit.label(t.lang)}"
        core = f"{sub.commodity.short(t.lang)} {sub.market.short_name} {price}"
        if quote.day != day:
            core += f" ({t.full_date(quote.day, day)})"
        extras = []
        if quote.week_change_pct is not None:
            extras.append(t.percent(quote.week_change_pct))
        if (
            best is not None
            and (best.amount - quote.amount) * 100 >= quote.amount * TRANSPORT_MARGIN_PCT
        ):
            extras.append(
                t(
                    "best %(market)s %(price)s, %(km)s km",
                    market=best.market.short_name,
                    price=t.money(best.amount, best.currency),
                    km=t.number(round(best.distance_km or 0)),
                )
            )
        items.append([core, *extras])
    head = t("Prices %(date)s:", date=t.date(day))
    line = storage_line(session, contact, day, _settings(max_age)) if items else None
    # The storage line only when the day's prices still fit beside it; else prices alone.
    return (_assemble(head, items, t.lang, line) if line else None) or _assemble(head, items, t.lang)


def storage_line(session: so.Session, contact: SubscriberView, day: dt.date, settings: Mapping[str, Any]) -> str | None:
    """Once a week in a harvest month: has storing the first such alert's crop paid here?

    On ``storage.BULLETIN_WEEKDAY`` only, for the first alert whose crop is harvested this
    month in its market's country and whose market has enough seasons of prices.
    """
    if day.weekday() != storage.BULLETIN_WEEKDAY:
        return None
    for sub in contact.subscriptions[:MAX_ITEMS]:
        if day.month not in storage.harvest_months(sub.market.country, sub.commodity):
            continue
        advice = storage.advice_for(session, sub.commodity, sub.market, day, settings)
        line = storage_texts.bulletin_line(Text(contact.language), advice, sub.commodity)
        if line:
            return line
    return None


def weekly_text(
    session: so.Session, contact: SubscriberView, day: dt.date, max_age: MaxAge = None, cache: QuoteCache | None = None
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
        price = f"{t.money(offer.price, offer.currency)}/{offer.unit.label(t.lang)}"
        core = f"{offer.buyer.name}: {offer.commodity.short(t.lang)}{grade} {price}"
        items.append(
            [core, t("until %(date)s", date=t.date(offer.window_end)), offer.delivery_place]
        )
    if items:
        return _assemble(t("Buyers this week:"), items, t.lang)
    # No buyer is asking: the week's note is the grade rules of the first crop instead.
    for sub in contact.subscriptions[:1]:
        # The reference grade, there whenever the crop has grades.
        reference = standard_texts.reference_grade(grades_for(session, sub.commodity))
        if reference is not None:
            # The first page of the grade as the STD reply tells it: head and safety limits.
            return standard_texts.grade_pages(t, sub.commodity, reference, reference, BUDGET)[0]
    return None
