"""The day of a sale in a SOLD message: "12/11", "2026-11-12", "12.11" last, "yesterday".

Only what the farmer typed is read here; the handler turns it into a date with today's.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# The day of a sale, day first: 12/11, 12/11/26, 12.11.2026; 2026-11-12 (hyphens arrive as spaces).
_DAY = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})(?:\2([0-9]{2}|(?:19|20)[0-9]{2}))?")
_ISO_DAY = re.compile(r"((?:19|20)[0-9]{2})-([0-9]{1,2})-([0-9]{1,2})")
# Days before today, in the four languages ("avant-hier" and "berki-demb" arrive as two words).
DAYS_AGO = {
    ("yesterday",): 1, ("jana",): 1, ("hier",): 1, ("demb",): 1,
    ("juzi",): 2, ("avant", "hier"): 2, ("avanthier",): 2, ("berki", "demb"): 2, ("berkidemb",): 2,
}
# Words that may introduce the day ("on 12/11", "tarehe 12/11"); "le" is a filler already.
DAY_WORDS = frozenset({"on", "date", "tarehe", "siku"})


@dataclass(frozen=True)
class TypedDay:
    """A day as a farmer wrote it: ``days_ago`` ("yesterday"), or a day and month, year optional.

    The parser does not know today's date; the handler turns this into a date.
    """

    day: int = 0
    month: int = 0
    year: int | None = None
    days_ago: int | None = None


def _read_day(text: str, last: bool) -> TypedDay | None:
    """The day in ``text``; "12.11" and "12-11" only ``last`` (elsewhere a price, two numbers)."""
    if iso := _ISO_DAY.fullmatch(text):
        return TypedDay(int(iso[3]), int(iso[2]), int(iso[1]))
    found = _DAY.fullmatch(text)
    if found is None or not (found[2] == "/" or found[4] or last):
        return None
    year = int(found[4]) if found[4] else None
    return TypedDay(int(found[1]), int(found[3]), year + 2000 if year is not None and year < 100 else year)


def sale_day(tokens: Sequence[str], is_number: Callable[[str], bool]) -> tuple[list[str], TypedDay | None]:
    """The day of a sale among SOLD's words, and the words without it (nor its "on").

    ``is_number`` tells the parser's quantities and prices ("10bags", "ksh4300") apart.
    """
    found: tuple[int, int, TypedDay] | None = None
    for i, token in enumerate(tokens):
        ago = DAYS_AGO.get(tuple(tokens[i:i + 2])) or DAYS_AGO.get((token,))
        if ago is not None:
            found = (i, i + (2 if tuple(tokens[i:i + 2]) in DAYS_AGO else 1), TypedDay(days_ago=ago))
        elif (day := _read_day(token, last=False)) is not None:
            found = (i, i + 1, day)
        if found:
            break
    # Last, after a quantity and a price (on their own these are numbers): 12.11, 12-11, 2026-11-12.
    for width in (3, 2, 1):
        if found is None and len(tokens) > width:
            numbers = sum(1 for word in tokens[:-width] if is_number(word))
            day = _read_day("-".join(tokens[-width:]), last=True) if numbers >= 2 else None
            found = (len(tokens) - width, len(tokens), day) if day else None
    if found is None:
        return list(tokens), None
    start, end, day = found
    start -= 1 if start > 0 and tokens[start - 1] in DAY_WORDS else 0
    return [*tokens[:start], *tokens[end:]], day
