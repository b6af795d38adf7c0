"""Prices and buyer standards: commodity -> market -> latest price; commodity -> grades."""
from __future__ import annotations

from typing import Any

from smsgw.conversations import texts
from smsgw.conversations.ussd.engine import Ctx, End, Go, Move, Screen, screen
from smsgw.conversations.ussd.layout import list_screen, nav, pick
from smsgw.conversations.ussd.screens.common import invalid
from smsgw.messaging import outbox
from smsgw.models import Commodity, Market
from smsgw.services import catalog, contacts, prices, subscriptions


def _commodities(ctx: Ctx) -> list[Commodity]:
    return catalog.commodities_for_country(ctx.db, catalog.country_for_phone(ctx.phone))


class CommodityList(Screen):
    """Pick a commodity, then go to ``next_screen`` with its id."""

    name = ""
    next_screen = ""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        names = [c.name(ctx.lang) for c in _commodities(ctx)]
        return list_screen(ctx, ctx.t("Choose a crop:"), names, params.get("page", 0))

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        items = _commodities(ctx)
        page = params.get("page", 0)
        chosen = pick(ctx, ctx.t("Choose a crop:"), [c.name(ctx.lang) for c in items], page, value)
        if chosen == "more":
            return Go(self.name, {**params, "page": page + 1})
        if chosen is None:
            return invalid(ctx)
        return Go(self.next_screen, {"commodity": items[chosen].id})


@screen("prices")
class PriceCommodity(CommodityList):
    """Prices, step 1: the crop."""

    name = "prices"
    next_screen = "prices_market"


@screen("standards")
class StandardCommodity(CommodityList):
    """Buyer standards, step 1: the crop."""

    name = "standards"
    next_screen = "standards_grade"


def _markets(ctx: Ctx) -> list[Market]:
    home = ctx.contact.home_market if ctx.contact else None
    return catalog.markets_for_country(ctx.db, catalog.country_for_phone(ctx.phone), first=home)


@screen("prices_market")
class PriceMarket(Screen):
    """Prices, step 2: the market, home market first."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        names = [m.name for m in _markets(ctx)]
        return list_screen(ctx, ctx.t("Choose a market:"), names, params.get("page", 0))

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        markets = _markets(ctx)
        page = params.get("page", 0)
        chosen = pick(ctx, ctx.t("Choose a market:"), [m.name for m in markets], page, value)
        if chosen == "more":
            return Go("prices_market", {**params, "page": page + 1})
        if chosen is None:
            return invalid(ctx)
        return Go("prices_result", {"commodity": params["commodity"], "market": markets[chosen].id})


@screen("prices_result")
class PriceResult(Screen):
    """Prices, step 3: the price, its trend and the best nearby market; subscribe."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        commodity = ctx.db.get(Commodity, params["commodity"])
        market = ctx.db.get(Market, params["market"])
        quote = prices.latest_quote(ctx.db, commodity, market, ctx.today)
        if quote is None:
            body = ctx.t("No price yet for %(crop)s in %(market)s.", crop=commodity.name(ctx.lang), market=market.name)
        else:
            body = texts.price_line(ctx.t, quote, prices.best_nearby(ctx.db, quote))
        return "\n".join([body, "1 " + ctx.t("Get this by SMS daily"), *nav(ctx)])

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value != "1":
            return invalid(ctx)
        commodity = ctx.db.get(Commodity, params["commodity"])
        market = ctx.db.get(Market, params["market"])

        def apply() -> bool:
            ctx.contact = ctx.contact or contacts.get_or_create_contact(ctx.db, ctx.phone, ctx.lang)
            return subscriptions.subscribe(ctx.db, ctx.contact, commodity, market)

        ctx.effect("subscribe", apply)
        return End(ctx.t("Done. You will get %(crop)s prices for %(market)s by SMS every morning. Send STOP to end.", crop=commodity.name(ctx.lang), market=market.name))


@screen("standards_grade")
class StandardGrade(Screen):
    """Buyer standards, step 2: one grade per screen with its limits; send by SMS."""

    def _grades(self, ctx: Ctx, params: dict[str, Any]):
        commodity = ctx.db.get(Commodity, params["commodity"])
        return commodity, catalog.grades_for(ctx.db, commodity)

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str | End:
        commodity, grades = self._grades(ctx, params)
        if not grades:
            return End(ctx.t("No grades recorded for %(crop)s yet.", crop=commodity.name(ctx.lang)))
        index = params.get("page", 0) % len(grades)
        body = texts.grade_limits(ctx.t, commodity, grades[index])
        lines = [body, "1 " + ctx.t("Send by SMS")]
        if len(grades) > 1:
            lines.append(ctx.t("9 Next grade"))
        return "\n".join([*lines, *nav(ctx)])

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        commodity, grades = self._grades(ctx, params)
        if value == "9" and len(grades) > 1:
            return Go("standards_grade", {**params, "page": params.get("page", 0) + 1})
        if value != "1" or not grades:
            return invalid(ctx)
        grade = grades[params.get("page", 0) % len(grades)]

        def apply() -> int:
            message = outbox.enqueue(
                ctx.db,
                to=ctx.phone,
                text=texts.grade_sms(ctx.t, commodity, grade),
                purpose="reply",
                key=f"ussd:{ctx.ussd.session_id}:{ctx.step}:grade",
                lang=ctx.lang,
                contact_id=ctx.contact.id if ctx.contact else None,
            )
            return message.id

        ctx.effect("send_grade", apply)
        return End(ctx.t("Sent. The SMS will arrive shortly."))
