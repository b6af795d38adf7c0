"""Small helpers shared by the admin views: paging and the request's database session."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import request

from smsgw.web.database import get_session

PER_PAGE = 50


@dataclass(frozen=True)
class Page:
    """One page of rows and whether there are more."""

    rows: list[Any]
    number: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        """True after the first page."""
        return self.number > 1


def page_number() -> int:
    """The ``page`` query argument, 1 when missing or silly."""
    raw = request.args.get("page", "1")
    # ASCII digits only ("²".isdigit() is true but int() refuses it); huge values are capped
    # before int() (which refuses strings of more than 4300 digits).
    if not (raw.isascii() and raw.isdigit()):
        return 1
    digits = raw.lstrip("0")
    return 10_000 if len(digits) > 5 else max(1, min(int(digits or "0"), 10_000))


MAX_ID = 2**31 - 1  # the largest value an INTEGER column holds (PostgreSQL refuses more)


def id_or_none(raw: str | None) -> int | None:
    """``raw`` as a row id when it is one (ASCII digits, within the integer range), else None."""
    text = (raw or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 0 < int(text) <= MAX_ID:
        return None
    return int(text)


def paginate(db: so.Session, query: sa.Select[Any], per_page: int = PER_PAGE, scalars: bool = True) -> Page:
    """Run ``query`` for the current page: one extra row tells whether a next page exists."""
    number = page_number()
    bounded = query.limit(per_page + 1).offset((number - 1) * per_page)
    rows = list(db.scalars(bounded).all() if scalars else db.execute(bounded).all())
    return Page(rows=rows[:per_page], number=number, has_next=len(rows) > per_page)


def db() -> so.Session:
    """The request's database session."""
    return get_session()


def args_without_page() -> dict[str, str]:
    """The current query arguments minus ``page``, for the pager links."""
    return {key: value for key, value in request.args.items() if key != "page"}
