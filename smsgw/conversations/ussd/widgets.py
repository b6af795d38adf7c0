"""Reusable screen shapes: pick from a list, type a number, confirm an action."""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import Any

from smsgw.conversations.ussd.engine import Ctx, End, Go, Move, Retry, Screen
from smsgw.conversations.ussd.layout import list_screen, nav, parse_amount, pick


def invalid(ctx: Ctx) -> Retry:
    """The one-line hint for a choice that is not on the screen."""
    return Retry(ctx.t("Invalid choice, try again."))


class ListScreen(Screen):
    """A paged list; subclasses give the title, the items and what a choice does."""

    name = ""

    def title(self, ctx: Ctx, params: dict[str, Any]) -> str:
        """The line above the list."""
        raise NotImplementedError

    def items(self, ctx: Ctx, params: dict[str, Any]) -> Sequence[Any]:
        """The objects listed."""
        raise NotImplementedError

    def label(self, ctx: Ctx, item: Any) -> str:
        """How one object is shown."""
        raise NotImplementedError

    def chosen(self, ctx: Ctx, params: dict[str, Any], item: Any) -> Move:
        """What choosing ``item`` does."""
        raise NotImplementedError

    def empty(self, ctx: Ctx, params: dict[str, Any]) -> str:
        """The text when there is nothing to list."""
        return ctx.t("Nothing to show.")

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str | End:
        items = self.items(ctx, params)
        if not items:
            return End(self.empty(ctx, params))
        labels = [self.label(ctx, item) for item in items]
        return list_screen(ctx, self.title(ctx, params), labels, params.get("page", 0))

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        items = self.items(ctx, params)
        labels = [self.label(ctx, item) for item in items]
        page = params.get("page", 0)
        choice = pick(ctx, self.title(ctx, params), labels, page, value)
        if choice == "more":
            return Go(self.name, {**params, "page": page + 1})
        if not isinstance(choice, int):
            return invalid(ctx)
        return self.chosen(ctx, {k: v for k, v in params.items() if k != "page"}, items[choice])


class NumberScreen(Screen):
    """Asks for a positive number; 0 and 00 are values here, not back and home."""

    numeric = True
    resumable = True
    maximum = decimal.Decimal("1e9")

    def prompt(self, ctx: Ctx, params: dict[str, Any]) -> str:
        """The question."""
        raise NotImplementedError

    def accept(self, ctx: Ctx, params: dict[str, Any], amount: decimal.Decimal) -> Move:
        """What a valid number does."""
        raise NotImplementedError

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return self.prompt(ctx, params)

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        amount = parse_amount(value)
        if amount is None or amount <= 0 or amount >= self.maximum:
            return Retry(ctx.t("Please enter a number above 0."))
        return self.accept(ctx, params, amount)


class ConfirmScreen(Screen):
    """Shows what will happen; 1 does it (once per session), 2 cancels."""

    resumable = True

    def summary(self, ctx: Ctx, params: dict[str, Any]) -> str:
        """What confirming will do."""
        raise NotImplementedError

    def confirm(self, ctx: Ctx, params: dict[str, Any]) -> Move:
        """Apply the effect (through ctx.effect) and say how it went."""
        raise NotImplementedError

    def render(self, ctx: Ctx, params: dict[str, Any]) -> str:
        return "\n".join(
            [self.summary(ctx, params), "1 " + ctx.t("Confirm"), "2 " + ctx.t("Cancel")]
        )

    def handle(self, ctx: Ctx, params: dict[str, Any], value: str) -> Move:
        if value == "1":
            return self.confirm(ctx, params)
        if value == "2":
            return End(ctx.t("Cancelled. Nothing was changed."))
        return invalid(ctx)


def menu_text(ctx: Ctx, title: str, options: Sequence[str], back: bool = True) -> str:
    """A short fixed menu: title, numbered options, navigation."""
    lines = [title, *(f"{i} {option}" for i, option in enumerate(options, start=1))]
    return "\n".join(lines + (nav(ctx) if back else []))
