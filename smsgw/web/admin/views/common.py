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
    return max(1, min(int(raw), 10_000)) if raw.isdigit() else 1


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


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ``escape="\\"``) matching ``text`` anywhere, wildcards literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
