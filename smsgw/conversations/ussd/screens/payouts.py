"""After close: the leader records deliveries; members confirm or dispute their payout."""

from __future__ import annotations

import decimal
from typing import Any

from smsgw.conversations.sms.settlement_commands import CONFIRMED, DELIVERED, DISPUTED, SETTLEMENT_ERRORS, refused
from smsgw.conversations.ussd.engine import Ctx, End, Go, Move, Retry, Screen, screen
from smsgw.conversations.ussd.layout import clip, list_screen, pick
from smsgw.conversations.ussd.screens.orders import order_of
from smsgw.conversations.ussd.widgets import ListScreen, NumberScreen, invalid, menu_text
from smsgw.db import utcnow
from smsgw.i18n import N_
from smsgw.models import Commitment, Contact, Grade
from smsgw.services import orders, settlement
from smsgw.services.order_texts import quantity
from smsgw.services.quantities import quantity_phrase

PAYOUT = N_("Order %(id)s: %(qty)s, %(total)s for you. Ref %(ref)s.")
COST = N_("Order %(id)s: %(qty)s, %(total)s to pay. Ref %(ref)s.")


def _name(contact: Contact) -> str:
    return contact.name or contact.phone[-4:]


@screen("leader_deliveries")
class LeaderDeliveries(Screen):
    """Committed members with committed > delivered quantities; choose one to record."""

    def _members(self, ctx: Ctx, params: dict[str, Any]) -> list[Commitment]:
        return settlement.members(ctx.db, order_of(ctx, params))

    def _lines(self, ctx: Ctx, params: dict[str, Any]) -> list[str]:
        return [
            f"{clip(_name(c.contact), 14)} {quantity(ctx.t, c.order_quantity)}>"
            + (quantity(ctx.t, c.delivered_quantity) if c.delivered_quantity is not None else "?")
            for c in self._members(ctx, params)
        ]

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str | End:
        lines = self._lines(ctx, params)
        if not lines:
            return End(ctx.t("No member has committed yet."))
        return list_screen(ctx, ctx.t("Delivered (committed>delivered):"), lines, params.get("page", 0))

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        lines = self._lines(ctx, params)
        page = params.get("page", 0)
        choice = pick(ctx, ctx.t("Delivered (committed>delivered):"), lines, page, value)
        if choice == "more":
            return Go("leader_deliveries", {**params, "page": page + 1})
        if not isinstance(choice, int):
            return invalid(ctx)
        member = self._members(ctx, params)[choice]
        return Go("leader_delivery_qty", {"order": params["order"], "member": member.contact_id})


@screen("leader_delivery_qty")
class LeaderDeliveryQuantity(NumberScreen):
    """How much the member delivered, in the order's unit (0: nothing)."""

    def prompt(self, ctx: Ctx, params: dict[str, Any]) -> str:
        order = order_of(ctx, params)
        member = ctx.db.get_one(Contact, params["member"])
        return ctx.t("Delivered by %(name)s, in %(unit)s? (0 if none)", name=_name(member),
                     unit=order.unit.label(ctx.lang))

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value.strip() in ("0", "00"):
            return self.accept(ctx, params, decimal.Decimal(0))
        return super().handle(ctx, params, value)

    def accept(self, ctx: Ctx, params: dict[str, Any], amount: decimal.Decimal) -> Move:
        if settlement.grades_for(ctx.db, order_of(ctx, params)):
            return Go("leader_delivery_grade", {**params, "qty": str(amount)})
        return record_delivery(ctx, {**params, "qty": str(amount)}, None)


def record_delivery(ctx: Ctx, params: dict[str, Any], grade: int | None) -> End:
    """Record the delivery once per session, and say where the order's deliveries stand."""

    def apply() -> list[Any]:
        item = settlement.deliver(ctx.db, params["order"], int(params["member"]), decimal.Decimal(params["qty"]),
                                  leader=ctx.member, grade=grade, now=utcnow())
        done, count = settlement.delivery_progress(ctx.db, item.order)
        return [item.delivered_grade.code if item.delivered_grade else "", done, count]

    try:
        code, done, count = ctx.effect("deliver", apply)
    except orders.OrderError as error:
        return End(refused(ctx.t, error, params["order"]))
    order = order_of(ctx, params)
    member = ctx.db.get_one(Contact, params["member"])
    qty = quantity_phrase(ctx.t, decimal.Decimal(params["qty"]), order.unit) + (f" {code}" if code else "")
    return End(ctx.t(DELIVERED, id=order.id, name=_name(member), qty=qty, n=done, count=count))


@screen("leader_delivery_grade")
class LeaderDeliveryGrade(ListScreen):
    """The grade found at delivery, or none."""

    name = "leader_delivery_grade"

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Grade found at delivery:")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[Grade | None]:
        return [None, *settlement.grades_for(ctx.db, order_of(ctx, params))]

    def label(self, ctx: Ctx, item: Grade | None) -> str:
        return item.code if item is not None else ctx.t("Not graded")

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: Grade | None) -> Move:
        return record_delivery(ctx, params, item.id if item is not None else None)


@screen("order_payout")
class OrderPayout(Screen):
    """A settled order: what the member is owed (or owes), the reference; confirm or dispute."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str | End:
        order = order_of(ctx, params)
        mine = settlement.commitment_of(ctx.db, order, ctx.member)
        if mine is None or mine.payout is None:
            return End(ctx.t(SETTLEMENT_ERRORS["no_delivery"]))
        message = PAYOUT if order.kind == "sell" else COST
        summary = ctx.t(
            message, id=order.id,
            qty=quantity_phrase(ctx.t, mine.delivered_quantity or decimal.Decimal(0), order.unit),
            total=ctx.t.money(mine.payout, order.currency), ref=mine.payment_reference or "-",
        )
        return menu_text(ctx, summary, [ctx.t("Confirm"), ctx.t("Dispute")])

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value == "1":
            try:
                ctx.effect("confirm", lambda: settlement.confirm(ctx.db, params["order"], ctx.member,
                                                                 now=utcnow()).id)
            except orders.OrderError as error:
                return End(refused(ctx.t, error, params["order"]))
            return End(ctx.t(CONFIRMED, id=params["order"]))
        if value == "2":
            return Go("order_dispute", params)
        return invalid(ctx)


@screen("order_dispute")
class OrderDispute(Screen):
    """What is wrong with the payment, in the member's words."""

    resumable = True

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("What is wrong with order %(id)s? Type a short note:", id=params["order"])

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        note = " ".join(value.split())
        if len(note) < 2:
            return Retry(ctx.t("Please type a few words."))
        try:
            ctx.effect("dispute", lambda: settlement.dispute(
                ctx.db, params["order"], ctx.member, note, now=utcnow(),
                event_key=f"ussd:{ctx.ussd.session_id}:{ctx.step}").id)
        except orders.OrderError as error:
            return End(refused(ctx.t, error, params["order"]))
        return End(ctx.t(DISPUTED, id=params["order"]))
