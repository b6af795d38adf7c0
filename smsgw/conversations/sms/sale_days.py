"""The day of a sale in a SOLD message: "12/11", "2026-11-12", "12.11" last, "yesterday".

Only what the farmer typed is read here (``services.sales.read_day`` reads a day); the
handler turns it into a date with today's.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from smsgw.services.sales import TypedDay, read_day

# Days before today, in the four languages ("avant-hier" and "berki-demb" arrive as two words).
DAYS_AGO = {
    ("yesterday",): 1, ("jana",): 1, ("hier",): 1, ("demb",): 1,
    ("juzi",): 2, ("avant", "hier"): 2, ("avanthier",): 2, ("berki", "demb"): 2, ("berkidemb",): 2,
}
# Words that may introduce the day ("on 12/11", "tarehe 12/11"); "le" is a filler already.
DAY_WORDS = frozenset({"on", "date", "tarehe", "siku"})


def _read_day(text: str, last: bool) -> TypedDay | None:
    """The day in ``text``; "12.11" and "12-11" only ``last`` (elsewhere a price, two numbers)."""
    day = read_day(text)
    if day is None or not (day.separator == "/" or day.year is not None or last):
        return None
    return day


def take_sale_day(tokens: Sequence[str], is_number: Callable[[str], bool]) -> tuple[list[str], TypedDay | None]:
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
