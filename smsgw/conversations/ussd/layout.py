"""Laying out USSD screens: numbered menus and paged lists that fit 160 characters."""

from __future__ import annotations

import decimal
import re
from collections.abc import Sequence
from dataclasses import dataclass

from smsgw.conversations.ussd.engine import MAX_SCREEN, Ctx

MORE = "9"
_KEYPAD_NUMBER = re.compile(r"[0-9]+(\.[0-9]{0,2})?|\.[0-9]{1,2}")


@dataclass(frozen=True)
class Page:
    """The slice of a long list shown on one screen."""

    start: int
    items: Sequence[str]
    has_more: bool


def nav(ctx: Ctx, *, back: bool = True, more: bool = False) -> list[str]:
    """The navigation lines a list screen ends with."""
    lines = []
    if more:
        lines.append(ctx.t("9 More"))
    if back:
        lines.append(ctx.t("0 Back") + " " + ctx.t("00 Home"))
    return lines


def numbered(items: Sequence[str]) -> list[str]:
    """``1 First``, ``2 Second``..."""
    return [f"{i} {item}" for i, item in enumerate(items, start=1)]


def fit_page(ctx: Ctx, title: str, items: Sequence[str], page: int, back: bool = True) -> Page:
    """Pick the items of ``page`` so that title, items and navigation fit one screen.

    Every page numbers its items from 1 and holds at most 8 (9 is "More"); the split depends on the language's
    text lengths, so it is computed, not fixed.
    """
    start = 0
    for _ in range(page):
        start += len(_take(ctx, title, items, start, back))
    chosen = _take(ctx, title, items, start, back)
    return Page(start=start, items=chosen, has_more=start + len(chosen) < len(items))


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, marked with ".." when cut."""
    if len(text) <= width:
        return text
    return text[: max(width - 2, 1)].rstrip() + ".."


def _take(ctx: Ctx, title: str, items: Sequence[str], start: int, back: bool) -> Sequence[str]:
    remaining = items[start:]
    for count in range(min(8, len(remaining)), 0, -1):
        more = start + count < len(items)
        lines = [title, *numbered(remaining[:count]), *nav(ctx, back=back, more=more)]
        if len("\n".join(lines)) <= MAX_SCREEN:
            return remaining[:count]
    if not remaining:
        return remaining
    # One label too long for any screen (a long name in a long language): shown cut, so
    # that no list, whatever its data, ever passes the limit.
    more = start + 1 < len(items)
    others = "\n".join([title, *nav(ctx, back=back, more=more)])
    return [clip(remaining[0], MAX_SCREEN - len(others) - len("\n1 "))]


def list_screen(ctx: Ctx, title: str, items: Sequence[str], page: int, back: bool = True) -> str:
    """A paged, numbered list screen, never longer than MAX_SCREEN."""
    title = clip(title, MAX_SCREEN // 2)  # a title never crowds out the list itself
    shown = fit_page(ctx, title, items, page, back)
    lines = [title, *numbered(shown.items), *nav(ctx, back=back, more=shown.has_more)]
    return "\n".join(lines)


def pick(
    ctx: Ctx, title: str, items: Sequence[str], page: int, value: str, back: bool = True
) -> int | str | None:
    """Interpret ``value`` on a paged list: an index into ``items``, ``"more"``, or None."""
    shown = fit_page(ctx, clip(title, MAX_SCREEN // 2), items, page, back)
    if value == MORE and shown.has_more:
        return "more"
    if value.isdigit():
        number = int(value) - 1
        if 0 <= number < len(shown.items):
            return shown.start + number
    return None


def parse_amount(value: str) -> decimal.Decimal | None:
    """A quantity or price typed on a keypad (``450``, ``4,300``, ``2.5``); None if not one."""
    text = value.strip().replace(" ", "")
    if text.count(",") == 1 and text.count(".") == 0 and len(text.split(",")[1]) != 3:
        text = text.replace(",", ".")
    text = text.replace(",", "")
    # Digits with at most two decimals: Decimal() alone would also take "1e30", "-5" and
    # "0.0001", which no keypad means and which round to 0 in a Numeric column.
    if len(text) > 12 or not _KEYPAD_NUMBER.fullmatch(text):
        return None
    return decimal.Decimal(text)
