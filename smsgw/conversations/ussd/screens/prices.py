"""Prices and buyer standards: crop -> market -> latest price; crop -> grades."""

from __future__ import annotations

from typing import Any

from smsgw.conversations import texts
from smsgw.conversations.ussd.engine import MAX_SCREEN, Ctx, End, Go, Move, Screen, screen
from smsgw.conversations.ussd.layout import nav
from smsgw.conversations.ussd.widgets import ListScreen, invalid
from smsgw.messaging import outbox
from smsgw.models import Commodity, Market, UssdSession
from smsgw.services import catalog, contacts, prices, subscriptions


class CropList(ListScreen):
    """Pick a crop, then go to ``next_screen`` with its id."""

    next_screen = ""
    kind = "produce"

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Choose a crop:")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[Commodity]:
        return catalog.commodities_for_country(
            ctx.db, catalog.country_for_phone(ctx.phone), self.kind
        )

    def label(self, ctx: Ctx, item: Commodity) -> str:
        return item.name(ctx.lang)

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: Commodity) -> Move:
        return Go(self.next_screen, {**params, "commodity": item.id})


class MarketList(ListScreen):
    """Pick a market (home market first), then go to ``next_screen`` with its id."""

    next_screen = ""

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Choose a market:")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[Market]:
        home = ctx.contact.home_market if ctx.contact else None
        return catalog.markets_for_country(ctx.db, catalog.country_for_phone(ctx.phone), first=home)

    def label(self, ctx: Ctx, item: Market) -> str:
        return item.name

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: Market) -> Move:
        return Go(self.next_screen, {**params, "market": item.id})


@screen("prices")
class PriceCrop(CropList):
    """Prices, step 1: the crop."""

    name = "prices"
    next_screen = "prices_market"


@screen("prices_market")
class PriceMarket(MarketList):
    """Prices, step 2: the market."""

    name = "prices_market"
    next_screen = "prices_result"


@screen("prices_result")
class PriceResult(Screen):
    """Prices, step 3: the price, its trend and the best nearby market; subscribe."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        commodity = ctx.db.get(Commodity, params["commodity"])
        market = ctx.db.get(Market, params["market"])
        quote = prices.latest_quote(ctx.db, commodity, market, ctx.today)
        if quote is None:
            body = ctx.t(
                "No price yet for %(crop)s in %(market)s.",
                crop=commodity.name(ctx.lang),
                market=market.name,
            )
        else:
            options = ["1 " + ctx.t("Get this by SMS daily"), *nav(ctx)]
            budget = MAX_SCREEN - len("\n".join(options)) - 1
            body = texts.price_line(ctx.t, quote, prices.best_nearby(ctx.db, quote), budget)
            viewed = ctx.state.setdefault(UssdSession.PRICES_VIEWED, [])
            if commodity.code not in viewed:
                viewed.append(commodity.code)
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
        return End(
            ctx.t(
                "Done: %(crop)s prices for %(market)s by SMS every morning. Send STOP to end.",
                crop=commodity.name(ctx.lang),
                market=market.name,
            )
        )


@screen("standards")
class StandardCrop(CropList):
    """Buyer standards, step 1: the crop."""

    name = "standards"
    next_screen = "standards_grade"


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
        grade = grades[params.get("page", 0) % len(grades)]
        lines = [texts.grade_limits(ctx.t, commodity, grade), "1 " + ctx.t("Send by SMS")]
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
            return outbox.enqueue(
                ctx.db,
                to=ctx.phone,
                text=texts.grade_sms(ctx.t, commodity, grade),
                purpose="reply",
                key=f"ussd:{ctx.ussd.session_id}:{ctx.step}:grade",
                lang=ctx.lang,
                contact_id=ctx.contact.id if ctx.contact else None,
            ).id

        ctx.effect("send_grade", apply)
        return End(ctx.t("Sent. The SMS will arrive shortly."))
