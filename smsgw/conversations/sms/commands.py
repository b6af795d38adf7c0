"""What each SMS keyword does: call one service, say the result in one SMS."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.config import LANGUAGES
from smsgw.conversations import texts
from smsgw.conversations.sms.parser import Parsed
from smsgw.db import utcnow
from smsgw.i18n import N_, Text
from smsgw.models import Commodity, Contact, InboundMessage, Market, Subscription, Unit
from smsgw.services import catalog, contacts, prices, sales, subscriptions
from smsgw.services.price_reports import ReportError, submit_report

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
HELP = N_(
    "PRICE MAIZE [market], STD MAIZE, SUB MAIZE, UNSUB MAIZE, SOLD 10BAG90 MAIZE 4300, JOIN 12 10, LANG SW, STOP"
)


def error_text(t: Text, code: str) -> str:
    """The reply for a recognised command with bad arguments."""
    return t(ERRORS.get(code, HELP))


@dataclass(frozen=True)
class Reply:
    """The answer to one inbound SMS."""

    text: str
    lang: str


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
        """Today in the service's zone."""
        return utcnow().astimezone(ZoneInfo(self.settings["SMSGW_TIMEZONE"])).date()

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


def dispatch(
    db: so.Session,
    settings: Mapping[str, Any],
    message: InboundMessage,
    contact: Contact | None,
    parsed: Parsed,
) -> Reply | None:
    """Run the command; the reply to send, or None when nothing may be sent."""
    t = Text(_language(contact, parsed, settings))
    request = Request(db, settings, message, contact, parsed, t)
    if parsed.command == "stop":
        text = _stop(request)
        return Reply(text, t.lang) if text else None
    if contact is not None and contact.opted_out and parsed.command != "start":
        return None  # after STOP, nothing but the acknowledgement until START
    if parsed.error and parsed.command not in ("unknown", "empty"):
        return Reply(error_text(t, parsed.error), t.lang)
    handler = HANDLERS.get(parsed.command, _help)
    text = handler(request)
    return Reply(text, request.t.lang) if text else None


def _help(request: Request) -> str:
    return request.t(HELP)


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
    return texts.price_line(request.t, quote, prices.best_nearby(request.db, quote))


def _std(request: Request) -> str:
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    grades = catalog.grades_for(request.db, commodity)
    if not grades:
        return request.t(
            "No grades recorded for %(crop)s yet.", crop=commodity.name(request.t.lang)
        )
    return texts.grades_sms(request.t, commodity, grades)


def _sub(request: Request) -> str:
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    contact = request.ensure_contact()
    market = _default_market(request, commodity)
    if market is None:
        return error_text(request.t, "unknown_market")
    subscriptions.subscribe(request.db, contact, commodity, market)
    return request.t(
        "Done: %(crop)s prices for %(market)s by SMS every morning. Send STOP to end.",
        crop=commodity.name(request.t.lang),
        market=market.name,
    )


def _unsub(request: Request) -> str:
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    contact = request.ensure_contact()
    request.db.execute(
        sa.delete(Subscription).where(
            Subscription.contact_id == contact.id, Subscription.commodity_id == commodity.id
        )
    )
    return request.t("Removed: no more %(crop)s alerts.", crop=commodity.name(request.t.lang))


def _sold(request: Request) -> str:
    parsed, t = request.parsed, request.t
    contact = request.contact
    if not contacts.is_registered(contact):
        return t("Please register first: dial the USSD code and choose Report a sale.")
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    if parsed.quantity is None:
        return error_text(t, "bad_quantity")
    if parsed.price is None:
        return error_text(t, "missing_price")
    unit = request.db.get(Unit, parsed.unit_id) if parsed.unit_id else commodity.default_unit
    price_unit = request.db.get(Unit, parsed.price_unit_id) if parsed.price_unit_id else unit
    price = parsed.price * unit.factor / price_unit.factor  # price per the quantity's unit
    if not sales.is_plausible(
        request.db, commodity, contact.home_market, price, unit, request.today
    ) and not _repeated(request):
        return t(
            "%(price)s per %(unit)s is far from recent market prices. If it is right, send the same SMS again.",
            price=t.money(price, contact.home_market.currency),
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
            sold_on=request.today,
            channel="sms",
            source_ref=f"sms:{request.message.gateway_id}",
        )
    except sales.SaleError as error:
        return error_text(t, error.code)
    return t(
        "Thank you. Sale recorded: %(qty)s %(unit)s %(crop)s at %(price)s.",
        qty=texts.quantity(t, parsed.quantity),
        unit=unit.label(t.lang),
        crop=commodity.name(t.lang),
        price=t.money(price, contact.home_market.currency),
    )


def _repeated(request: Request) -> bool:
    """True when the same text came from the same number in the last hour (a confirmation)."""
    since = utcnow() - dt.timedelta(hours=1)
    return bool(
        request.db.scalar(
            sa.select(InboundMessage.id)
            .where(
                InboundMessage.from_phone == request.message.from_phone,
                InboundMessage.text == request.message.text,
                InboundMessage.id != request.message.id,
                InboundMessage.received_at >= since,
            )
            .limit(1)
        )
    )


def _report(request: Request) -> str:
    parsed, t = request.parsed, request.t
    commodity, market = (
        request.commodity(),
        (request.db.get(Market, parsed.market_id) if parsed.market_id else None),
    )
    if commodity is None or market is None or parsed.price is None:
        return t("Format: P MAIZE NAKURU 4300/BAG90")
    unit = (
        request.db.get(Unit, parsed.price_unit_id)
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
            day=request.today,
            source_ref=request.message.gateway_id,
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


HANDLERS: dict[str, Callable[[Request], str | None]] = {
    "help": _help,
    "unknown": _help,
    "empty": _help,
    "start": _start,
    "stop": _stop,
    "lang": _lang,
    "price": _price,
    "std": _std,
    "sub": _sub,
    "unsub": _unsub,
    "sold": _sold,
    "report": _report,
}
