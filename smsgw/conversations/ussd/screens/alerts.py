"""My SMS alerts: list, add, remove, stop all."""

from __future__ import annotations

from typing import Any

from smsgw.conversations.ussd.engine import Ctx, End, Go, Move, Screen, screen
from smsgw.conversations.ussd.layout import nav
from smsgw.conversations.ussd.widgets import ConfirmScreen, invalid
from smsgw.models import Subscription
from smsgw.services import contacts, subscriptions

SHOWN = 5  # alerts listed on one screen; options 7 and 8 follow


def _subscriptions(ctx: Ctx) -> list[Subscription]:
    return subscriptions.list_for(ctx.db, ctx.contact) if ctx.contact else []


def _label(ctx: Ctx, sub: Subscription) -> str:
    return f"{sub.commodity.name(ctx.lang)} {sub.market.short_name}"


@screen("alerts")
class Alerts(Screen):
    """The caller's alerts; choose one to remove, 7 to add, 8 to stop all."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        subs = _subscriptions(ctx)[:SHOWN]
        title = ctx.t("Your SMS alerts:") if subs else ctx.t("You have no SMS alerts.")
        lines = [title, *(f"{i} {_label(ctx, sub)}" for i, sub in enumerate(subs, start=1))]
        lines.append("7 " + ctx.t("Add an alert"))
        if subs:
            lines.append("8 " + ctx.t("Stop all SMS"))
        return "\n".join(lines + nav(ctx))

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        subs = _subscriptions(ctx)[:SHOWN]
        if value == "7":
            return Go("prices")
        if value == "8" and subs:
            return Go("alerts_stop")
        if value.isdigit() and 1 <= int(value) <= len(subs):
            return Go("alerts_remove", {"subscription": subs[int(value) - 1].id})
        return invalid(ctx)


@screen("alerts_remove")
class AlertRemove(ConfirmScreen):
    """Confirm removing one alert."""

    resumable = False

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        sub = ctx.db.get(Subscription, params["subscription"])
        return (
            ctx.t("Remove the %(alert)s alert?", alert=_label(ctx, sub))
            if sub
            else ctx.t("This alert is already removed.")
        )

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        ctx.effect(
            "unsubscribe",
            lambda: subscriptions.unsubscribe(ctx.db, params["subscription"], ctx.contact),
        )
        return End(ctx.t("Removed. You will no longer get that alert."))


@screen("alerts_stop")
class AlertStopAll(ConfirmScreen):
    """Confirm stopping every SMS (the same as sending STOP)."""

    resumable = False

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Stop all SMS from this service?")

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        ctx.effect("stop_all", lambda: contacts.opt_out(ctx.db, ctx.contact))
        return End(ctx.t("Done. You will get no more SMS. Send START to come back."))
