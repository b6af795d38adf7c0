"""Prices and buyer standards: crop -> market -> latest price (-> store or sell?); crop -> grades."""

from __future__ import annotations

from typing import Any

from smsgw.conversations import texts
from smsgw.conversations.ussd.engine import MAX_SCREEN, Ctx, End, Go, Move, Screen, screen
from smsgw.conversations.ussd.layout import nav
from smsgw.conversations.ussd.widgets import ListScreen, invalid
from smsgw.messaging import outbox
from smsgw.models import Commodity, Market, UssdSession
from smsgw.services import catalog, contacts, enrolment, prices, standard_texts, storage, storage_texts, subscriptions


class CropList(ListScreen):
    """Pick a crop, then go to ``next_screen`` with its id."""

    next_screen = ""
    kind = "produce"

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Choose a crop:")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[Commodity]:
        return ctx.reads.commodities_for_country(catalog.country_for_phone(ctx.phone), self.kind)

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
        home = ctx.contact.home_market_id if ctx.contact else None
        return ctx.reads.markets_for_country(catalog.country_for_phone(ctx.phone), first_id=home)

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
        commodity = ctx.reads.commodity(params["commodity"])
        market = ctx.reads.market(params["market"])
        quote = ctx.reads.latest_quote(commodity, market, ctx.today)
        if quote is None:
            body = ctx.t(
                "No price yet for %(crop)s in %(market)s.",
                crop=commodity.name(ctx.lang),
                market=market.name,
            )
        else:
            options = self._options(ctx)
            budget = MAX_SCREEN - len("\n".join(options)) - 1
            # texts.price_answer, with the best nearby market from the cache.
            fresh = prices.quote_is_fresh(quote, ctx.today, ctx.settings)
            best = ctx.reads.best_nearby(quote, ctx.settings, ctx.today) if fresh else None
            body = texts.price_line(ctx.t, quote, best, budget, today=ctx.today, fresh=fresh)
            enrolment.got_price(ctx.db, ctx.contact, prices.quote_is_fresh(quote, ctx.today, ctx.settings))
            viewed = ctx.state.setdefault(UssdSession.PRICES_VIEWED, [])
            if commodity.code not in viewed:
                viewed.append(commodity.code)
        return "\n".join([body, *self._options(ctx)])

    def _options(self, ctx: Ctx) -> list[str]:
        return ["1 " + ctx.t("Get this by SMS daily"), "2 " + ctx.t("Store or sell?"), *nav(ctx)]

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value == "2":
            return Go("prices_storage", params)
        if value != "1":
            return invalid(ctx)
        commodity = ctx.db.get_one(Commodity, params["commodity"])
        market = ctx.db.get_one(Market, params["market"])

        def apply() -> str:
            ctx.contact = ctx.contact or contacts.get_or_create_contact(ctx.db, ctx.phone, ctx.lang)
            return subscriptions.add_alert(ctx.db, ctx.contact, commodity, market)

        if ctx.effect("subscribe", apply) == "full":
            assert ctx.contact is not None
            return End(texts.alerts_full(ctx.t, subscriptions.list_for(ctx.db, ctx.contact)))
        return End(
            ctx.t(
                "Done: %(crop)s prices for %(market)s by SMS every morning. Send STOP to end.",
                crop=commodity.name(ctx.lang),
                market=market.name,
            )
        )


@screen("prices_storage")
class PriceStorage(Screen):
    """Prices, step 4: has storing this crop from harvest paid in this market's past years?"""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str | End:
        commodity = ctx.db.get_one(Commodity, params["commodity"])
        market = ctx.db.get_one(Market, params["market"])
        advice = storage.advice_for(ctx.db, commodity, market, ctx.today, ctx.settings)
        return End(storage_texts.answer(ctx.t, advice, commodity, market))

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        return invalid(ctx)  # the answer ends the session: nothing to choose


@screen("standards")
class StandardCrop(CropList):
    """Buyer standards, step 1: the crop."""

    name = "standards"
    next_screen = "standards_grade"


@screen("standards_grade")
class StandardGrade(Screen):
    """Buyer standards, step 2: one grade per screen with all its limits; send by SMS.

    The screen, the SMS it sends and the STD keyword share one composition
    (``services.standard_texts``); a grade too long for one screen goes on over "9 More"
    pages, its safety limits on the first one.
    """

    def _grades(self, ctx: Ctx, params: dict[str, Any]):
        commodity = ctx.reads.commodity(params["commodity"])
        grades = ctx.reads.grades_for(commodity.id)
        return commodity, grades, standard_texts.reference_grade(grades)

    def _options(self, ctx: Ctx, more: str | None) -> list[str]:
        return ["1 " + ctx.t("Send by SMS"), *([more] if more else []), *nav(ctx)]

    def _pages(self, ctx: Ctx, params: dict[str, Any]):
        commodity, grades, reference = self._grades(ctx, params)
        if not grades:
            return commodity, grades, None, []
        grade = grades[params.get("page", 0) % len(grades)]
        longest = max(ctx.t("9 More"), ctx.t("9 Next grade"), key=len)
        # Room for the invalid-choice line too: a wrong key is answered, never re-shown silently.
        hint = invalid(ctx).hint
        budget = MAX_SCREEN - len("\n".join(self._options(ctx, longest))) - len(hint) - 2
        pages = standard_texts.grade_pages(ctx.t, commodity, grade, reference, budget)
        return commodity, grades, grade, pages

    def _more(self, ctx: Ctx, params: dict[str, Any], grades: list, pages: list[str]) -> str | None:
        """What 9 does here: the rest of this grade, else the next grade, else nothing."""
        if params.get("part", 0) + 1 < len(pages):
            return ctx.t("9 More")
        return ctx.t("9 Next grade") if len(grades) > 1 else None

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str | End:
        commodity, grades, _grade, pages = self._pages(ctx, params)
        if not grades:
            return End(ctx.t("No grades recorded for %(crop)s yet.", crop=commodity.name(ctx.lang)))
        body = pages[min(params.get("part", 0), len(pages) - 1)]
        return "\n".join([body, *self._options(ctx, self._more(ctx, params, grades, pages))])

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        commodity, grades, grade, pages = self._pages(ctx, params)
        if value == "9" and grades and self._more(ctx, params, grades, pages):
            part = params.get("part", 0)
            if part + 1 < len(pages):  # the rest of this grade's limits first
                return Go("standards_grade", {**params, "part": part + 1})
            return Go("standards_grade", {**params, "page": params.get("page", 0) + 1, "part": 0})
        if value != "1" or not grades:
            return invalid(ctx)
        reference = standard_texts.reference_grade(grades)

        def apply() -> int:
            return outbox.enqueue(
                ctx.db,
                to=ctx.phone,
                text=standard_texts.grade_text(ctx.t, commodity, grade, reference),
                purpose="reply",
                key=f"ussd:{ctx.ussd.session_id}:{ctx.step}:grade",
                lang=ctx.lang,
                contact_id=ctx.contact.id if ctx.contact else None,
            ).id

        ctx.effect("send_grade", apply)
        return End(ctx.t("Sent. The SMS will arrive shortly."))
