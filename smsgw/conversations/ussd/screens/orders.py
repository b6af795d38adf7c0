"""Group orders for members: open orders of my groups -> detail -> commit or withdraw."""

from __future__ import annotations

import decimal
from typing import Any

import sqlalchemy.orm as so

from smsgw.conversations import texts
from smsgw.conversations.ussd.engine import Ctx, End, Go, Move, Screen, screen
from smsgw.conversations.ussd.layout import nav
from smsgw.conversations.ussd.widgets import ConfirmScreen, ListScreen, NumberScreen, invalid
from smsgw.db import utcnow
from smsgw.models import GroupOrder
from smsgw.services import orders, settlement
from smsgw.services.quantities import quantity_phrase


def order_of(ctx: Ctx, params: dict[str, Any]) -> GroupOrder:
    """The order the flow is about, with the crop and unit every order screen names."""
    return ctx.db.get_one(
        GroupOrder, params["order"], options=[so.joinedload(GroupOrder.commodity), so.joinedload(GroupOrder.unit)]
    )


def order_error(ctx: Ctx, error: orders.OrderError) -> End:
    """Close the session with the reason an order action was refused."""
    return End(texts.order_error(ctx.t, error.code))


@screen("orders")
class OrderList(ListScreen):
    """The open orders of the caller's groups."""

    name = "orders"

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Open group orders:")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[GroupOrder]:
        # Settled orders whose payout the member has not confirmed come after the open ones.
        now = utcnow()
        return orders.open_orders_for(ctx.db, ctx.member, now) + settlement.awaiting_confirmation(
            ctx.db, ctx.member, now
        )

    def label(self, ctx: Ctx, item: GroupOrder) -> str:
        return texts.order_label(ctx.t, item)

    def empty(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Your groups have no open orders now.")

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: GroupOrder) -> Move:
        return Go("order_payout" if item.settled_at is not None else "order_detail", {"order": item.id})


@screen("order_detail")
class OrderDetail(Screen):
    """What the order is, the group total, my commitment; commit or withdraw."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        order = order_of(ctx, params)
        mine = settlement.commitment_of(ctx.db, order, ctx.member)
        lines = [texts.order_summary(ctx.t, order, orders.totals(ctx.db, order), mine)]
        lines.append("1 " + (ctx.t("Change my quantity") if mine else ctx.t("Commit a quantity")))
        if mine:
            lines.append("2 " + ctx.t("Withdraw"))
        return "\n".join(lines + nav(ctx))

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value == "1":
            return Go("order_qty", params)
        if value == "2":
            return Go("order_withdraw", params)
        return invalid(ctx)


@screen("order_qty")
class OrderQuantity(NumberScreen):
    """How much I commit, in the order's unit."""

    def prompt(self, ctx: Ctx, params: dict[str, Any]) -> str:
        order = order_of(ctx, params)
        return ctx.t(
            "How many %(unit)s do you commit to order %(id)s?",
            unit=order.unit.label(ctx.lang),
            id=order.id,
        )

    def accept(self, ctx: Ctx, params: dict[str, Any], amount: decimal.Decimal) -> Move:
        return Go("order_confirm", {**params, "qty": str(amount)})


@screen("order_confirm")
class OrderConfirm(ConfirmScreen):
    """Confirm the commitment; the group total is shown after."""

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        order = order_of(ctx, params)
        qty = decimal.Decimal(params["qty"])
        return ctx.t(
            "Commit %(qty)s to order %(id)s?",
            qty=quantity_phrase(ctx.t, qty, order.unit),
            id=order.id,
        )

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        order = order_of(ctx, params)

        def apply() -> str:
            result = orders.commit(
                ctx.db,
                order.id,
                ctx.member,
                decimal.Decimal(params["qty"]),
                now=utcnow(),
                event_key=f"ussd:{ctx.ussd.session_id}:{ctx.step}",
            )
            return str(result.total)

        try:
            total = decimal.Decimal(ctx.effect("commit", apply))
        except orders.OrderError as error:
            return order_error(ctx, error)
        return End(texts.total_now(ctx.t, order, total))


@screen("order_withdraw")
class OrderWithdraw(ConfirmScreen):
    """Confirm withdrawing my commitment."""

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Withdraw from order %(id)s?", id=params["order"])

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        order = order_of(ctx, params)

        def apply() -> str:
            return str(
                orders.withdraw(
                    ctx.db,
                    order.id,
                    ctx.member,
                    now=utcnow(),
                    event_key=f"ussd:{ctx.ussd.session_id}:{ctx.step}",
                ).total
            )

        try:
            total = decimal.Decimal(ctx.effect("withdraw", apply))
        except orders.OrderError as error:
            return order_error(ctx, error)
        return End(texts.total_now(ctx.t, order, total))
