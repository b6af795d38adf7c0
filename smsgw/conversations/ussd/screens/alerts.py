"""My SMS alerts: every alert listed page by page, add, remove, stop all."""

from __future__ import annotations

from typing import Any

from smsgw.conversations.ussd.engine import Ctx, End, Go, Move, Screen, screen
from smsgw.conversations.ussd.widgets import ConfirmScreen, ListScreen, invalid, menu_text
from smsgw.models import Subscription
from smsgw.services import contacts, subscriptions


def _subscriptions(ctx: Ctx) -> list[Subscription]:
    return subscriptions.list_for(ctx.db, ctx.contact) if ctx.contact else []


def _label(ctx: Ctx, sub: Subscription) -> str:
    return f"{sub.commodity.name(ctx.lang)} {sub.market.short_name}"


def _options(ctx: Ctx, count: int) -> list[tuple[str, str]]:
    """(label, next screen) of the alerts menu: the list only when there is one."""
    options = []
    if count:
        options.append((ctx.t("See or remove alerts (%(count)s)", count=count), "alerts_list"))
    options.append((ctx.t("Add an alert"), "prices"))
    if count:
        options.append((ctx.t("Stop all SMS"), "alerts_stop"))
    return options


@screen("alerts")
class Alerts(Screen):
    """The alerts menu: see (and remove) every alert, add one, stop all SMS."""

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        count = len(_subscriptions(ctx))
        title = ctx.t("Your SMS alerts:") if count else ctx.t("You have no SMS alerts.")
        return menu_text(ctx, title, [label for label, _ in _options(ctx, count)])

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        options = _options(ctx, len(_subscriptions(ctx)))
        if value.isdigit() and 1 <= int(value) <= len(options):
            return Go(options[int(value) - 1][1])
        return invalid(ctx)


@screen("alerts_list")
class AlertList(ListScreen):
    """Every alert, paged by the layout to fit the screen; choose one to remove it."""

    name = "alerts_list"

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Your SMS alerts:")

    def items(self, ctx: Ctx, params: dict[str, Any]) -> list[Subscription]:
        return _subscriptions(ctx)

    def label(self, ctx: Ctx, item: Subscription) -> str:
        return _label(ctx, item)

    def empty(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("You have no SMS alerts.")

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: Subscription) -> Move:
        return Go("alerts_remove", {"subscription": item.id})


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
            lambda: subscriptions.unsubscribe(ctx.db, params["subscription"], ctx.member),
        )
        return End(ctx.t("Removed. You will no longer get that alert."))


@screen("alerts_stop")
class AlertStopAll(ConfirmScreen):
    """Confirm stopping every SMS (the same as sending STOP)."""

    resumable = False

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return ctx.t("Stop all SMS from this service?")

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        ctx.effect("stop_all", lambda: contacts.opt_out(ctx.db, ctx.member))
        return End(ctx.t("Done. You will get no more SMS. Send START to come back."))
