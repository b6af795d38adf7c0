"""Leader tools: open an order, see totals and members, close or cancel."""

from __future__ import annotations

import decimal
from typing import Any

from smsgw.conversations import texts
from smsgw.conversations.sms.offer_commands import take_error
from smsgw.conversations.ussd.engine import Ctx, End, Go, Move, Screen, screen
from smsgw.conversations.ussd.layout import list_screen, pick
from smsgw.conversations.ussd.screens.orders import order_error, order_of
from smsgw.conversations.ussd.screens.prices import CropList
from smsgw.conversations.ussd.widgets import (
    ConfirmScreen,
    ListScreen,
    NumberScreen,
    invalid,
    menu_text,
)
from smsgw.db import utcnow
from smsgw.i18n import N_
from smsgw.models import BuyOffer, Commodity, GroupOrder, ProducerGroup, Unit
from smsgw.services import offer_matching, offers, orders
from smsgw.services.quantities import quantity_phrase

MAX_DAYS = 60


@screen("leader")
class LeaderMenu(Screen):
    """Open an order or manage the group's orders."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return menu_text(
            ctx, ctx.t("Leader menu:"), [ctx.t("Open an order"), ctx.t("My group's orders")]
        )

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value == "1":
            groups = orders.led_groups(ctx.db, ctx.member)
            if len(groups) == 1:
                return Go("leader_kind", {"group": groups[0].id})
            return Go("leader_group")
        if value == "2":
            return Go("leader_orders")
        return invalid(ctx)


@screen("leader_group")
class LeaderGroup(ListScreen):
    """For leaders of several groups: which group the order is for."""

    name = "leader_group"

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("For which group?")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[ProducerGroup]:
        return orders.led_groups(ctx.db, ctx.member)

    def label(self, ctx: Ctx, item: ProducerGroup) -> str:
        return item.name

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: ProducerGroup) -> Move:
        return Go("leader_kind", {"group": item.id})


@screen("leader_kind")
class LeaderKind(Screen):
    """Sell produce together, or buy inputs together."""

    resumable = True

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        options = [ctx.t("Sell produce"), ctx.t("Buy inputs")]
        if offers.open_offers_for(ctx.db, ctx.member, ctx.today, ctx.settings):
            options.append(ctx.t("Sell to a buyer's offer"))
        return menu_text(ctx, ctx.t("New group order:"), options)

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value in ("1", "2"):
            kind = "sell" if value == "1" else "buy"
            return Go(
                "leader_crop_sell" if kind == "sell" else "leader_crop_buy",
                {**params, "kind": kind},
            )
        if value == "3" and offers.open_offers_for(ctx.db, ctx.member, ctx.today, ctx.settings):
            return Go("leader_offer", {**params, "kind": "sell"})
        return invalid(ctx)


@screen("leader_offer")
class LeaderOffer(ListScreen):
    """Open buyers' offers and suppliers' quotes the group may take (same country and
    currency, near enough); choosing one sets crop, unit, price and buyer."""

    name = "leader_offer"
    resumable = True

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Buyers' offers:")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[BuyOffer]:
        group = ctx.db.get(ProducerGroup, params.get("group"))
        found = offers.open_offers_for(ctx.db, ctx.member, ctx.today, ctx.settings)
        if group is None:
            return found
        return [item for item in found if group in offers.groups_for(ctx.db, item, ctx.settings)]

    def label(self, ctx: Ctx, item: BuyOffer) -> str:
        return (
            f"{item.id} {item.buyer.name[:12]} {item.commodity.short(ctx.lang)} "
            f"{ctx.t.money(item.price, item.currency)} x{ctx.t.number(offers.remaining(item))}"
        )

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: BuyOffer) -> Move:
        kind = "sell" if item.kind == "buy" else "buy"
        return Go(
            "leader_qty",
            {**params, "kind": kind, "commodity": item.commodity_id, "offer": item.id, "price": str(item.price)},
        )


@screen("leader_crop_sell")
class LeaderCropSell(CropList):
    """The produce the group sells."""

    name = "leader_crop_sell"
    next_screen = "leader_qty"
    resumable = True


@screen("leader_crop_buy")
class LeaderCropBuy(CropList):
    """The input the group buys."""

    name = "leader_crop_buy"
    next_screen = "leader_qty"
    kind = "input"
    resumable = True


def _crop(ctx: Ctx, params: dict[str, Any]) -> Commodity:
    return ctx.db.get_one(Commodity, params["commodity"])


def _unit(ctx: Ctx, params: dict[str, Any]) -> Unit:
    """The order's unit: the offer's when taking one, else the crop's usual unit."""
    offer = ctx.db.get(BuyOffer, params["offer"]) if "offer" in params else None
    return offer.unit if offer is not None else _crop(ctx, params).default_unit


@screen("leader_qty")
class LeaderQuantity(NumberScreen):
    """The target quantity, in the commodity's usual unit."""

    def prompt(self, ctx: Ctx, params: dict[str, Any]) -> str:
        crop = _crop(ctx, params)
        return ctx.t(
            "Target quantity of %(crop)s, in %(unit)s?",
            crop=crop.name(ctx.lang),
            unit=_unit(ctx, params).label(ctx.lang),
        )

    def accept(self, ctx: Ctx, params: dict[str, Any], amount: decimal.Decimal) -> Move:
        # An offer fixes the price; otherwise the leader gives one.
        return Go(
            "leader_days" if "offer" in params else "leader_price", {**params, "qty": str(amount)}
        )


@screen("leader_price")
class LeaderPrice(NumberScreen):
    """The offer (sell) or target (buy) price per unit."""

    def prompt(self, ctx: Ctx, params: dict[str, Any]) -> str:
        crop = _crop(ctx, params)
        return ctx.t("Price per %(unit)s agreed or asked?", unit=crop.default_unit.label(ctx.lang))

    def accept(self, ctx: Ctx, params: dict[str, Any], amount: decimal.Decimal) -> Move:
        return Go("leader_days", {**params, "price": str(amount)})


@screen("leader_days")
class LeaderDays(NumberScreen):
    """How many days members have to commit."""

    maximum = decimal.Decimal(MAX_DAYS + 1)

    def prompt(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Members can commit for how many days? (1-%(max)s)", max=MAX_DAYS)

    def accept(self, ctx: Ctx, params: dict[str, Any], amount: decimal.Decimal) -> Move:
        return Go("leader_confirm", {**params, "days": int(amount) or 1})


@screen("leader_confirm")
class LeaderConfirm(ConfirmScreen):
    """Confirm and open the order; members are told by SMS."""

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        crop = _crop(ctx, params)
        group = ctx.db.get_one(ProducerGroup, params["group"])
        msgid = (
            N_("Sell %(qty)s at %(price)s each, %(days)s days?")
            if params["kind"] == "sell"
            else N_("Buy %(qty)s at %(price)s each, %(days)s days?")
        )
        return ctx.t(
            msgid,
            qty=quantity_phrase(ctx.t, decimal.Decimal(params["qty"]), _unit(ctx, params), crop),
            price=ctx.t.money(
                decimal.Decimal(params["price"]), group.market.currency if group.market else "KES"
            ),
            days=params["days"],
        )

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        crop = _crop(ctx, params)
        group = ctx.db.get_one(ProducerGroup, params["group"])

        def apply() -> tuple[int, str | None, str | None]:
            """The order, and for a draft the price and reference said to the leader."""
            if "offer" in params:
                taken = offer_matching.take_offer(
                    ctx.db, ctx.member, group, params["offer"], decimal.Decimal(params["qty"]),
                    days=params["days"], now=utcnow(), today=ctx.today, settings=ctx.settings,
                )
                return taken.id, None, None
            opened = offer_matching.open_by_hand(
                ctx.db, ctx.member, group, kind=params["kind"], commodity=crop,
                quantity=decimal.Decimal(params["qty"]), unit=crop.default_unit,
                price=decimal.Decimal(params["price"]), days=params["days"], now=utcnow(),
                today=ctx.today, settings=ctx.settings,
            )
            order = opened.order
            if not opened.draft:
                return order.id, None, None
            return (order.id, ctx.t.money(order.price or 0, order.currency),
                    ctx.t.money(opened.reference or 0, order.currency))

        try:
            order_id, price, reference = ctx.effect("open_order", apply)
        except orders.OrderError as error:
            return order_error(ctx, error)
        except offer_matching.TakeError as error:
            return End(take_error(ctx.t, error))
        if price is not None:
            return End(ctx.t(
                "Order %(id)s: %(price)s is far from the market price %(ref)s. Send YES %(id)s to open it, "
                "or CANCEL %(id)s.", id=order_id, price=price, ref=reference,
            ))
        return End(ctx.t("Order %(id)s is open. Members will get an SMS.", id=order_id))


@screen("leader_orders")
class LeaderOrders(ListScreen):
    """Open and closed orders of the groups I lead."""

    name = "leader_orders"

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Your group's orders:")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[GroupOrder]:
        return orders.orders_led_by(ctx.db, ctx.member)

    def label(self, ctx: Ctx, item: GroupOrder) -> str:
        return texts.order_label(ctx.t, item)

    def empty(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Your groups have no open orders now.")

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: GroupOrder) -> Move:
        return Go("leader_order", {"order": item.id})


@screen("leader_order")
class LeaderOrder(Screen):
    """Totals of one order; members, close, cancel."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        order = order_of(ctx, params)
        reference = None
        if order.offer is not None and order.group.market is not None:
            reference = offers.reference_for(ctx.db, order.offer, order.group.market, ctx.today)
        summary = texts.order_summary(ctx.t, order, orders.totals(ctx.db, order), None, reference)
        options = [ctx.t("Members")]
        if order.status == "open":
            options.append(ctx.t("Close"))
        if order.status in ("open", "closed"):
            options.append(ctx.t("Cancel order"))
        if order.status == "closed":
            options.append(ctx.t("Record deliveries"))
        return menu_text(ctx, summary, options)

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        order = order_of(ctx, params)
        targets = ["leader_members"]
        if order.status == "open":
            targets.append("leader_close")
        if order.status in ("open", "closed"):
            targets.append("leader_cancel")
        if order.status == "closed":
            targets.append("leader_deliveries")
        if value.isdigit() and 1 <= int(value) <= len(targets):
            return Go(targets[int(value) - 1], {"order": order.id})
        return invalid(ctx)


@screen("leader_members")
class LeaderMembers(Screen):
    """Members' commitments, paged (read only)."""

    def _lines(self, ctx: Ctx, params: dict[str, Any]) -> list[str]:
        order = order_of(ctx, params)
        return [
            f"{c.contact.name or c.contact.phone[-4:]} {texts.quantity(ctx.t, c.order_quantity)}"
            for c in orders.commitments(ctx.db, order)
        ]

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str | End:
        lines = self._lines(ctx, params)
        if not lines:
            return End(ctx.t("No member has committed yet."))
        return list_screen(ctx, ctx.t("Commitments:"), lines, params.get("page", 0))

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if (
            pick(ctx, ctx.t("Commitments:"), self._lines(ctx, params), params.get("page", 0), value)
            == "more"
        ):
            return Go("leader_members", {**params, "page": params.get("page", 0) + 1})
        return invalid(ctx)


@screen("leader_close")
class LeaderClose(ConfirmScreen):
    """Confirm closing: no more commitments; members get the final total."""

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Close order %(id)s? Members get the final total by SMS.", id=params["order"])

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        try:
            ctx.effect(
                "close", lambda: orders.close(ctx.db, params["order"], ctx.member, now=utcnow()).id
            )
        except orders.OrderError as error:
            return order_error(ctx, error)
        return End(ctx.t("Order %(id)s is closed. Members are told by SMS.", id=params["order"]))


@screen("leader_cancel")
class LeaderCancel(ConfirmScreen):
    """Confirm cancelling the order; committed members are told."""

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Cancel order %(id)s? Committed members are told by SMS.", id=params["order"])

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        try:
            ctx.effect(
                "cancel",
                lambda: orders.cancel(ctx.db, params["order"], ctx.member, now=utcnow()).id,
            )
        except orders.OrderError as error:
            return order_error(ctx, error)
        return End(ctx.t("Order %(id)s is cancelled. Members are told by SMS.", id=params["order"]))
