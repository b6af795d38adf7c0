"""What each SMS keyword does: call one service, say the result in one SMS (table: ``router``)."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy.orm as so

from smsgw.config import LANGUAGES
from smsgw.conversations import texts
from smsgw.conversations.sms.parser import Parsed
from smsgw.db import utcnow
from smsgw.i18n import N_, Text
from smsgw.messaging.encoding import normalize
from smsgw.models import Commodity, Contact, InboundMessage, Market, Unit
from smsgw.services import catalog, contacts, enrolment, prices, sales, standard_texts, subscriptions
from smsgw.services.price_checks import Policy
from smsgw.services.price_reports import ReportError, submit_report
from smsgw.services.quantities import quantity_phrase

ERRORS = {
    "missing_commodity": N_("Which crop? Example: PRICE MAIZE"),
    "unknown_commodity": N_("Sorry, we do not know that crop. Send HELP for examples."),
    "unknown_market": N_("Sorry, we do not know that market. Send HELP for examples."),
    "missing_price": N_("Please add the price. Example: SOLD 10BAG90 MAIZE 4300"),
    "bad_price": N_("That price is not a number above 0."),
    "bad_quantity": N_("That quantity is not a number above 0."),
    "unknown_unit": N_("Sorry, we do not know that unit. Use kg or bag90."),
    "missing_order": N_("Which order? Add its number, e.g. JOIN 12 10"),
    "bad_lang": N_("Languages: LANG EN, LANG FR, LANG SW, LANG WO"),
}
# A reporter's receipt: published at once, or held for an operator's check.
REPORT_RECEIPTS = {
    True: N_("Published: %(crop)s %(market)s %(price)s/%(unit)s. Thank you."),
    False: N_("Received: %(crop)s %(market)s %(price)s/%(unit)s, pending check. Thank you."),
}
# Filled with a crop, market, unit and price of the farmer's own country (help_examples).
HELP = N_(
    "PRICE %(word)s [%(where)s], STD %(word)s, SUB %(word)s, UNSUB %(word)s, "
    "SOLD 10%(bag)s %(word)s %(amount)s, JOIN 12 10, LANG %(lang)s, STOP"
)
# The other language worth suggesting in each country (the first that is not the farmer's).
HELP_LANGS = {"KE": ("SW", "EN"), "SN": ("WO", "FR")}
# How late an SMS may reach us and still be dated by AT's ``date`` (a phone out of
# coverage, AT's retries, a database outage); an older ``date`` is a wrong clock.
LATEST_DELIVERY = dt.timedelta(days=7)


def error_text(t: Text, code: str, examples: Mapping[str, str] | None = None) -> str:
    """The reply for a recognised command with bad arguments."""
    if code in ERRORS:
        return t(ERRORS[code])
    return t(HELP, **(examples or DEFAULT_EXAMPLES))


# Said to a number that sent STOP and now asks something: their question is answered.
ALERTS_OFF = N_("Your SMS alerts are off. Send START to turn them on.")


@dataclass(frozen=True)
class Reply:
    """The answer to one inbound SMS; ``note`` is added to it, or sent after it if too long."""

    text: str
    lang: str
    note: str | None = None


@dataclass
class Request:
    """One inbound SMS being answered."""

    db: so.Session
    settings: Mapping[str, Any]
    message: InboundMessage
    contact: Contact | None
    parsed: Parsed
    t: Text

    @property
    def today(self) -> dt.date:
        """Today in the service's zone: the day the reply is read."""
        return utcnow().astimezone(ZoneInfo(self.settings["SMSGW_TIMEZONE"])).date()

    @property
    def sent_day(self) -> dt.date:
        """The day the person sent the message, in the service's zone: AT's ``date`` (never
        after the message reached us, nor more than ``LATEST_DELIVERY`` before), else its arrival.

        A sale "yesterday", a sale with no day, a price seen or a payment made "today" are
        of that day, however late the message is handled (AT's retries, an SMS held while
        the database was down). A ``date`` further back is a wrong clock, not a late SMS.
        """
        arrived = self.message.received_at or utcnow()
        sent = self.message.sent_at
        day = sent if sent is not None and arrived - LATEST_DELIVERY <= sent <= arrived else arrived
        return day.astimezone(ZoneInfo(self.settings["SMSGW_TIMEZONE"])).date()

    def ensure_contact(self) -> Contact:
        """The sender as a contact, created on first use of a command that needs one."""
        if self.contact is None:
            self.contact = contacts.get_or_create_contact(
                self.db, self.message.from_phone, self.t.lang
            )
            self.message.contact_id = self.contact.id
        return self.contact

    def market(self) -> Market | None:
        """The market named in the SMS, else the sender's home market."""
        if self.parsed.market_id:
            return self.db.get(Market, self.parsed.market_id)
        return self.contact.home_market if self.contact else None

    def commodity(self) -> Commodity | None:
        """The commodity named in the SMS."""
        return (
            self.db.get(Commodity, self.parsed.commodity_id) if self.parsed.commodity_id else None
        )


def _language(contact: Contact | None, parsed: Parsed, settings: Mapping[str, Any]) -> str:
    if contact is not None and contact.language_chosen:
        return contact.language
    return parsed.lang_hint or (contact.language if contact else settings["SMSGW_DEFAULT_LANG"])


def _help(request: Request) -> str:
    text = request.t(HELP, **help_examples(request))
    # Long local words or a big price could push the help past one SMS: the short examples fit.
    if len(normalize(text, request.t.lang)) > 160:
        text = request.t(HELP, **DEFAULT_EXAMPLES)
    return text


DEFAULT_EXAMPLES = {"word": "MAIZE", "where": "NAKURU", "bag": "BAG90", "amount": "4300", "lang": "SW"}


def _pick(words: list[str], preferred: str, fallback: str) -> str:
    """The word people know (``preferred``) if it is one of ``words``, else the shortest."""
    usable = [word for word in words if "-" not in word]
    if preferred.lower() in usable:
        return preferred.upper()
    return min(usable, key=len).upper() if usable else fallback.upper()


def help_examples(request: Request) -> dict[str, str]:
    """HELP's examples from the farmer's own country: a crop, market, unit and price there.

    A farmer in Senegal is shown millet and Kaolack, not maize and Nakuru; the words are
    the crop's and market's own names when they are keywords, else the shortest alias.
    """
    lang = request.t.lang
    home = request.contact.home_market if request.contact else None
    country = home.country if home else catalog.country_for_phone(request.message.from_phone)
    crops = catalog.commodities_for_country(request.db, country)
    markets = catalog.markets_for_country(request.db, country, first=home)
    if not crops or not markets:
        return DEFAULT_EXAMPLES
    crop, market = crops[0], markets[0]
    words = [a.alias for a in crop.aliases if a.lang == lang] or [a.alias for a in crop.aliases]
    unit = crop.default_unit
    label = unit.label(lang).lower().split(" ")
    # A unit word that starts with a letter (10BAG90, not 1090KG), in the farmer's words.
    bags = [a.alias for a in unit.aliases if a.alias[0].isalpha() and any(c.isdigit() for c in a.alias)]
    local = [alias for alias in bags if any(alias.startswith(word) for word in label if word.isalpha())]
    quote = prices.latest_quote(request.db, crop, market, request.today)
    others = [code for code in HELP_LANGS.get(country or "", ("SW", "EN")) if code.lower() != lang]
    return {
        "word": _pick(words, crop.name(lang), crop.code),
        "where": _pick([a.alias for a in market.aliases], market.short_name, market.short_name),
        "bag": _pick(local or bags, "", unit.code),
        "amount": str(int(quote.amount)) if quote else "100",
        "lang": others[0] if others else "EN",
    }


def _stop(request: Request) -> str | None:
    contact = request.ensure_contact()
    if not contacts.opt_out(request.db, contact):
        return None  # acknowledged once already
    return request.t("You will get no more SMS from us. Send START to come back.")


def _start(request: Request) -> str:
    contacts.opt_in(request.db, request.ensure_contact())
    return request.t("Welcome back. Send HELP for the commands.")


def _lang(request: Request) -> str:
    code = request.parsed.lang_code
    if code not in LANGUAGES:
        return error_text(request.t, "bad_lang")
    contacts.set_language(request.db, request.ensure_contact(), code)
    request.t = Text(code)
    return request.t("Your language is now English.")


def _need_commodity(request: Request) -> Commodity | str:
    commodity = request.commodity()
    return commodity if commodity is not None else error_text(request.t, "missing_commodity")


def _default_market(request: Request, commodity: Commodity) -> Market | None:
    market = request.market()
    if market is not None:
        return market
    country = catalog.country_for_phone(request.message.from_phone)
    found = prices.markets_with_prices(request.db, commodity, country)
    return found[0] if found else None


def _price(request: Request) -> str:
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    market = _default_market(request, commodity)
    quote = prices.latest_quote(request.db, commodity, market, request.today) if market else None
    if quote is None:
        return request.t(
            "No price yet for %(crop)s in %(market)s.",
            crop=commodity.name(request.t.lang),
            market=market.name if market else "-",
        )
    enrolment.got_price(request.db, request.contact, prices.quote_is_fresh(quote, request.today, request.settings))
    return texts.price_answer(request.t, request.db, quote, request.today, request.settings)


def _std(request: Request) -> str:
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    grades = catalog.grades_for(request.db, commodity)
    # The same composition as the USSD screen and the SMS it sends, for the reference grade
    # (there is one whenever the crop has grades).
    reference = standard_texts.reference_grade(grades)
    if reference is None:
        return request.t(
            "No grades recorded for %(crop)s yet.", crop=commodity.name(request.t.lang)
        )
    return standard_texts.grade_text(request.t, commodity, reference, reference)


def _sub(request: Request) -> str:
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    contact = request.ensure_contact()
    market = _default_market(request, commodity)
    if market is None:
        return error_text(request.t, "unknown_market")
    if subscriptions.add_alert(request.db, contact, commodity, market) == "full":
        return _alerts_full(request, contact)
    return request.t(
        "Done: %(crop)s prices for %(market)s by SMS every morning. Send STOP to end.",
        crop=commodity.name(request.t.lang),
        market=market.name,
    )


def _alerts_full(request: Request, contact: Contact) -> str:
    """Why the alert was not added, with the alerts the farmer has, in one SMS."""
    return texts.alerts_full(request.t, subscriptions.list_for(request.db, contact))


def _unsub(request: Request) -> str:
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    subscriptions.unsubscribe_commodity(request.db, request.ensure_contact(), commodity)
    return request.t("Removed: no more %(crop)s alerts.", crop=commodity.name(request.t.lang))


# SOLD with a day no sale can have (services.sales.sale_day and check_sold_on).
SALE_DAY_ERRORS = {
    "bad_date": N_("That date does not exist. Write the day, then the month: 12/11 is 12 November."),
    "future_date": N_("%(date)s is in the future. Write the day, then the month: 12/11 is 12 November."),
    "old_date": N_("%(date)s is more than %(days)s days ago: we cannot record that sale. Please check the date."),
}
# The receipt of a sale made before today, with its day.
SOLD_ON = N_("Thank you. Sale of %(date)s recorded: %(qty)s at %(price)s each.")


def _sold_on(request: Request) -> dt.date | str:
    """The day of the sale (the day the SMS was sent unless it gave one), or the reply saying why it cannot be."""
    typed, today, t = request.parsed.sold_on, request.sent_day, request.t
    if typed is None:
        return today
    try:
        day = typed.date(today)
    except sales.SaleError:
        return t(SALE_DAY_ERRORS["bad_date"])
    try:
        sales.check_sold_on(day, today)
    except sales.SaleError as error:
        return t(SALE_DAY_ERRORS[error.code], date=t.full_date(day, today), days=sales.OLDEST_REPORTED_SALE.days)
    return day


def _sold(request: Request) -> str:
    parsed, t = request.parsed, request.t
    contact = request.contact
    if contact is None or not contacts.is_registered(contact):
        return t("Please register first: dial the USSD code and choose Report a sale.")
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    if parsed.quantity is None:
        return error_text(t, "bad_quantity")
    if parsed.price is None:
        return error_text(t, "missing_price")
    sold_on = _sold_on(request)
    if isinstance(sold_on, str):
        return sold_on
    # A registered contact has a home market (``contacts.is_registered``).
    home = contact.home_market
    assert home is not None
    unit = request.db.get_one(Unit, parsed.unit_id) if parsed.unit_id else commodity.default_unit
    price_unit = request.db.get_one(Unit, parsed.price_unit_id) if parsed.price_unit_id else unit
    price = parsed.price * unit.factor / price_unit.factor  # price per the quantity's unit
    # A past sale is judged against the prices around its own day.
    if not sales.is_plausible(request.db, commodity, home, price, unit, sold_on) and not sales.said_before(
        request.db, request.message
    ):
        return t(
            "%(price)s per %(unit)s is far from recent market prices. If it is right, send the same SMS again.",
            price=t.money(price, home.currency),
            unit=unit.label(t.lang),
        )
    try:
        sales.report_sale(
            request.db,
            contact,
            commodity=commodity,
            quantity=parsed.quantity,
            unit=unit,
            price=price.quantize(decimal.Decimal("0.01")),
            buyer_type="market",
            sold_on=sold_on,
            channel="sms",
            source_ref=f"sms:{request.message.gateway_id}",
            today=request.sent_day,
        )
    except sales.SaleError as error:
        return error_text(t, error.code)
    qty, each = quantity_phrase(t, parsed.quantity, unit, commodity), t.money(price, home.currency)
    if sold_on != request.today:
        return t(SOLD_ON, date=t.full_date(sold_on, request.today), qty=qty, price=each)
    return t("Thank you. Sale recorded: %(qty)s at %(price)s each.", qty=qty, price=each)


def _report(request: Request) -> str:
    parsed, t = request.parsed, request.t
    commodity, market = (
        request.commodity(),
        (request.db.get(Market, parsed.market_id) if parsed.market_id else None),
    )
    if commodity is None or market is None or parsed.price is None:
        return t("Format: P MAIZE NAKURU 4300/BAG90")
    unit = (
        request.db.get_one(Unit, parsed.price_unit_id)
        if parsed.price_unit_id
        else commodity.default_unit
    )
    try:
        observation = submit_report(
            request.db,
            request.message.from_phone,
            commodity=commodity,
            market=market,
            amount=parsed.price,
            unit=unit,
            day=request.sent_day,
            source_ref=request.message.gateway_id,
            policy=Policy.from_settings(request.settings),
        )
    except ReportError as error:
        return t(error.message)
    receipt = REPORT_RECEIPTS[observation.status == "approved"]
    return t(
        receipt,
        crop=commodity.name(t.lang),
        market=market.name,
        price=t.money(parsed.price, market.currency),
        unit=unit.label(t.lang),
    )
