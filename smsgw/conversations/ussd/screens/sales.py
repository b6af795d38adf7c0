"""Report a sale: crop -> unit -> quantity -> day -> price -> buyer -> confirm."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import sqlalchemy as sa

from smsgw.conversations.ussd.engine import Ctx, End, Go, Move, Retry, Screen, screen
from smsgw.conversations.ussd.layout import nav
from smsgw.conversations.ussd.screens.prices import CropList
from smsgw.conversations.ussd.widgets import (
    ConfirmScreen,
    ListScreen,
    NumberScreen,
    invalid,
    menu_text,
)
from smsgw.i18n import N_
from smsgw.models import Commodity, Market, Unit
from smsgw.services import sales
from smsgw.services.quantities import quantity_phrase

BUYERS = [
    ("farm_gate_trader", N_("Trader at farm gate")),
    ("market", N_("At the market")),
    ("group_order", N_("Group order")),
    ("processor", N_("Processor or exporter")),
]
# Why a typed day was refused, one line above the question (services.sales.check_sold_on).
DAY_HINTS = {
    "bad_date": N_("That date does not exist."),
    "future_date": N_("That date is in the future."),
    "old_date": N_("We record sales of the last %(days)s days only."),
}


def _unit(ctx: Ctx, params: dict[str, Any]) -> Unit:
    return ctx.db.get_one(Unit, params["unit"])


def _crop(ctx: Ctx, params: dict[str, Any]) -> Commodity:
    return ctx.db.get_one(Commodity, params["commodity"])


def _day(ctx: Ctx, params: dict[str, Any]) -> dt.date:
    """The day of the sale chosen on the day screen (today for a flow begun before it existed)."""
    return dt.date.fromisoformat(params["day"]) if "day" in params else ctx.today


def _home(ctx: Ctx) -> Market:
    """The caller's home market: its currency prices the sale (set when they registered)."""
    home = ctx.member.home_market
    if home is None:
        raise LookupError(f"sale reported by a caller with no home market ({ctx.phone})")
    return home


@screen("sale")
class SaleCrop(CropList):
    """Step 1: the crop sold."""

    name = "sale"
    next_screen = "sale_unit"
    resumable = True


@screen("sale_unit")
class SaleUnit(ListScreen):
    """Step 2: the unit the quantity and price are in (the crop's usual unit first)."""

    name = "sale_unit"
    resumable = True

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Sold in which unit?")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[Unit]:
        usual = _crop(ctx, params).default_unit
        others = ctx.db.scalars(
            sa.select(Unit)
            .where(Unit.base == usual.base, Unit.id != usual.id)
            .order_by(Unit.factor)
        ).all()
        return [usual, *others]

    def label(self, ctx: Ctx, item: Unit) -> str:
        return item.label(ctx.lang)

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: Unit) -> Move:
        return Go("sale_qty", {**params, "unit": item.id})


@screen("sale_qty")
class SaleQuantity(NumberScreen):
    """Step 3: how much."""

    def prompt(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t(
            "How many %(unit)s of %(crop)s did you sell?",
            unit=_unit(ctx, params).label(ctx.lang),
            crop=_crop(ctx, params).name(ctx.lang),
        )

    def accept(self, ctx: Ctx, params: dict[str, Any], amount: decimal.Decimal) -> Move:
        return Go("sale_when", {**params, "qty": str(amount)})


@screen("sale_when")
class SaleWhen(Screen):
    """Step 4: the day of the sale: today, yesterday, or a day typed on the next screen."""

    resumable = True

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        options = [ctx.t("Today"), ctx.t("Yesterday"), ctx.t("Another day")]
        return menu_text(ctx, ctx.t("When did you sell?"), options)

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value in ("1", "2"):
            day = ctx.today - dt.timedelta(days=int(value) - 1)
            return Go("sale_price", {**params, "day": day.isoformat()})
        if value == "3":
            return Go("sale_date", params)
        return invalid(ctx)


@screen("sale_date")
class SaleDate(Screen):
    """Step 4b: the day typed, day then month (year optional): the latest such day not in the future."""

    resumable = True

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return "\n".join([ctx.t("Day and month of the sale? Example: 2511 for 25 November"), *nav(ctx)])

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        try:
            sold_on = typed_day(value, ctx.today)
            sales.check_sold_on(sold_on, ctx.today)
        except sales.SaleError as error:
            return Retry(ctx.t(DAY_HINTS[error.code], days=sales.OLDEST_REPORTED_SALE.days))
        return Go("sale_price", {**params, "day": sold_on.isoformat()})


def typed_day(value: str, today: dt.date) -> dt.date:
    """The day a caller typed, keypad digits too ("2511"); SaleError("bad_date") if none."""
    typed = sales.read_day(value.strip(), keypad=True)
    if typed is None:
        raise sales.SaleError("bad_date")
    return typed.date(today)


@screen("sale_price")
class SalePrice(NumberScreen):
    """Step 4: the price received per unit; an unusual price asks to check."""

    def prompt(self, ctx: Ctx, params: dict[str, Any]) -> str:
        home = _home(ctx)
        return ctx.t(
            "Price received per %(unit)s (%(currency)s)?",
            unit=_unit(ctx, params).label(ctx.lang),
            currency=home.currency,
        )

    def accept(self, ctx: Ctx, params: dict[str, Any], amount: decimal.Decimal) -> Move:
        following = {**params, "price": str(amount)}
        plausible = sales.is_plausible(
            ctx.db,
            _crop(ctx, params),
            ctx.member.home_market,
            amount,
            _unit(ctx, params),
            _day(ctx, params),  # a past sale is judged against the prices around its day
        )
        return Go("sale_buyer" if plausible else "sale_check", following)


@screen("sale_check")
class SaleCheck(Screen):
    """An unusual price: are you sure?"""

    resumable = True

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        price = ctx.t.money(decimal.Decimal(params["price"]), _home(ctx).currency)
        title = ctx.t(
            "%(price)s per %(unit)s is far from recent market prices. Is it right?",
            price=price,
            unit=_unit(ctx, params).label(ctx.lang),
        )
        return menu_text(
            ctx, title, [ctx.t("Yes, it is right"), ctx.t("No, change it")], back=False
        )

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value == "1":
            return Go("sale_buyer", {**params, "checked": True})
        if value == "2":
            return Go("sale_price", {k: v for k, v in params.items() if k != "price"})
        return invalid(ctx)


@screen("sale_buyer")
class SaleBuyer(ListScreen):
    """Step 5: who bought."""

    name = "sale_buyer"
    resumable = True

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Who bought?")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[tuple[str, str]]:
        return BUYERS

    def label(self, ctx: Ctx, item: tuple[str, str]) -> str:
        return ctx.t(item[1])

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: tuple[str, str]) -> Move:
        return Go("sale_confirm", {**params, "buyer": item[0]})


@screen("sale_confirm")
class SaleConfirm(ConfirmScreen):
    """Step 6: confirm and store the sale."""

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        day = _day(ctx, params)
        message = (
            N_("Sold %(qty)s at %(price)s each.")
            if day == ctx.today
            else N_("Sold %(qty)s at %(price)s each on %(date)s.")
        )
        return ctx.t(
            message,
            qty=quantity_phrase(ctx.t, decimal.Decimal(params["qty"]), _unit(ctx, params), _crop(ctx, params)),
            price=ctx.t.money(decimal.Decimal(params["price"]), _home(ctx).currency),
            date=ctx.t.full_date(day, ctx.today),
        )

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        def apply() -> int:
            return sales.report_sale(
                ctx.db,
                ctx.member,
                commodity=_crop(ctx, params),
                quantity=decimal.Decimal(params["qty"]),
                unit=_unit(ctx, params),
                price=decimal.Decimal(params["price"]),
                buyer_type=params["buyer"],
                sold_on=_day(ctx, params),
                channel="ussd",
                source_ref=f"ussd:{ctx.ussd.session_id}:{ctx.step}",
                today=ctx.today,
            ).id

        try:
            ctx.effect("sale", apply)
        except sales.SaleError:
            return End(
                ctx.t("That sale could not be recorded. Please check the numbers and try again.")
            )
        return End(ctx.t("Thank you. Your sale is recorded and helps farmers get better prices."))
