"""Read one SMS line into a command and its arguments: pure, forgiving, and never raising.

``parse`` only reads; the router decides what to do. Work is capped (one SMS segment, 20
words), so any input, however long or strange, costs the same small amount.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from smsgw.conversations.sms.keywords import (
    CURRENCY_WORDS,
    FILLER_WORDS,
    KEYWORDS,
    NUMBER,
    OFFER_WORDS,
    ORDER_WORDS,
    PER_WORDS,
    POLITE_WORDS,
    Keyword,
    Match,
    find_keyword,
    find_language,
    normalize_text,
    parse_number,
    stop_keyword,
)
from smsgw.conversations.sms.sale_days import take_sale_day
from smsgw.conversations.sms.vocabulary import BAG, Vocabulary, load_vocabulary
from smsgw.services.sales import TypedDay

__all__ = ["Parsed", "Vocabulary", "load_vocabulary", "normalize_text", "parse", "parse_number"]

MAX_CHARS = 160  # one SMS segment: nothing a farmer means lies beyond it
MAX_WORDS = 20
MAX_QUANTITY = Decimal(1_000_000)
MAX_PRICE = Decimal(100_000_000)
# The smallest amounts our Numeric(14, 3) quantities and Numeric(14, 2) money hold: below
# them a value is stored as 0 and breaks the "> 0" check constraints.
MIN_QUANTITY = Decimal("0.001")
MIN_PRICE = Decimal("0.01")
MAX_ORDER = 2**31 - 1

# ASCII digits only: int() and Decimal() refuse some characters str.isdigit() accepts (፩).
_CURRENCY_PREFIX = re.compile(r"(?:kshs|ksh|kes|shs|sh|fcfa|cfa|xof|frs)(?=[0-9])")
_GROUP = re.compile(r"([0-9]{3})(/.*|[a-z]*)")
_ORDER_REF = re.compile(r"[0-9]{1,10}")



@dataclass(frozen=True)
class Parsed:
    """What one SMS asks for; ``error`` names the bad argument of a recognised command."""

    command: str
    lang_hint: str | None
    commodity_id: int | None = None
    market_id: int | None = None
    quantity: Decimal | None = None
    unit_id: int | None = None
    price: Decimal | None = None
    price_unit_id: int | None = None
    order_ref: int | None = None
    lang_code: str | None = None
    args: tuple[str, ...] = ()
    error: str | None = None
    sold_on: TypedDay | None = None  # SOLD: the day of the sale, when the farmer gave one


@dataclass
class _Number:
    """A number as typed, with the unit or currency written next to it."""

    value: Decimal | None
    position: int
    raw: str = ""
    unit_text: str = ""  # the unit as typed, for a bag the router must size itself
    unit: int | None = None  # "10bags", "2 sac100": a unit id, or BAG
    per: int | None = None  # "4300/bag90", "48 per kg"
    bad_unit: bool = False  # a glued unit word nobody knows ("10bugz", "4300/bug")
    stray: bool = False  # an unknown word right after it: probably a unit
    money: bool = False  # had a currency or a "/unit": a price, never a quantity


@dataclass
class _Scan:
    """Names and numbers found among a command's arguments."""

    commodity: int | None = None
    market: int | None = None
    numbers: list[_Number] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    leftover: list[tuple[int, str]] = field(default_factory=list)

    def args(self, *used: _Number | None) -> tuple[str, ...]:
        """Words nothing consumed, with the numbers not in ``used``, in message order."""
        spare = [(n.position, n.raw) for n in self.numbers if all(n is not u for u in used)]
        return tuple(word for _, word in sorted(self.leftover + spare))


def _name_at(tokens: Sequence[str], i: int, vocab: Vocabulary, commodity: bool, market: bool,
             near: bool) -> tuple[str, Match[int]] | None:
    """A commodity or market phrase at ``i``: fewest edits, then most words, commodity first."""
    found = []
    for kind, wanted, table in (("commodity", commodity, vocab.tables[0]),
                                ("market", market, vocab.tables[1])):
        hit = table.find(tokens, i, near) if wanted else None
        if hit is not None:
            found.append((hit.distance, -hit.words, kind == "market", kind, hit))
    if not found:
        return None
    *_, kind, hit = min(found)
    return kind, hit


def _known_name(tokens: Sequence[str], i: int, vocab: Vocabulary) -> bool:
    return any(_name_at(tokens, i, vocab, True, True, near) for near in (False, True))


def _unit_at(tokens: Sequence[str], i: int, vocab: Vocabulary) -> Match[int] | None:
    """A unit at ``i``; a typo of one only when the word is no commodity or market."""
    if i >= len(tokens) or tokens[i] in CURRENCY_WORDS:
        return None
    hit = vocab.tables[2].exact_at(tokens, i)
    if hit is None and _name_at(tokens, i, vocab, True, True, near=False) is None:
        hit = vocab.tables[2].near_at(tokens, i)
    return hit


def _unit_word(word: str, vocab: Vocabulary) -> int | None:
    """The unit glued to a number ("bags" in "10bags"), exact or within typo reach."""
    hit = vocab.tables[2].exact_at([word], 0) or vocab.tables[2].near_at([word], 0)
    return None if hit is None else hit.value


def _read_number(tokens: Sequence[str], i: int, vocab: Vocabulary) -> tuple[_Number, int]:
    """The number starting at token ``i`` and what belongs to it; the index after it."""
    token, number = tokens[i], _Number(None, i)
    prefix = _CURRENCY_PREFIX.match(token)
    if prefix:
        token, number.money = token[prefix.end():], True
    head = NUMBER.match(token)
    digits, rest = (head.group(), token[head.end():]) if head else ("", token)
    j = i + 1
    # "4 300", "1 500kg": three-digit groups after a short number belong to it, unless the
    # group is itself a unit ("5 100kg" is five 100 kg bags)
    while 0 < len(digits) <= 3 and digits.isdigit() and not rest and j < len(tokens):
        group = _GROUP.fullmatch(tokens[j])
        if group is None or vocab.tables[2].exact_at(tokens, j) is not None:
            break
        digits, rest, j = digits + group[1], group[2], j + 1
    number.value = parse_number(digits)
    left, slash, right = rest.partition("/")
    if left in CURRENCY_WORDS:
        number.money = True
    elif left:
        number.unit_text = left[1:] if left[0] == "x" and len(left) > 1 else left
        number.unit = _unit_word(number.unit_text, vocab)
        number.bad_unit = number.unit is None
    if slash and right:
        number.per, number.money = _unit_word(right, vocab), True
        number.bad_unit = number.bad_unit or number.per is None
    if not rest:  # nothing glued: the unit may be the next word ("10 bags", "2 x 90kg")
        k = j + 1 if j < len(tokens) and tokens[j] == "x" else j
        hit = _unit_at(tokens, k, vocab)
        if hit is not None:
            number.unit, number.unit_text = hit.value, " ".join(tokens[k:k + hit.words])
            j = k + hit.words
        else:
            number.stray = k < len(tokens) and _is_stray(tokens, k, vocab)
    while j < len(tokens):
        if tokens[j] in CURRENCY_WORDS:
            number.money, j = True, j + 1
        elif number.per is None and tokens[j] in PER_WORDS and (
            hit := _unit_at(tokens, j + 1, vocab)
        ):
            number.per, number.money, j = hit.value, True, j + 1 + hit.words
        else:
            break
    number.raw = " ".join(tokens[i:j])
    return number, j


def _is_stray(tokens: Sequence[str], k: int, vocab: Vocabulary) -> bool:
    """Whether the word at ``k`` is nothing we know: no filler, currency, name or keyword."""
    word = tokens[k]
    if not word.isalpha() or word in KEYWORDS:
        return False
    if word in FILLER_WORDS or word in CURRENCY_WORDS or word in PER_WORDS:
        return False
    return not _known_name(tokens, k, vocab)


def _scan(tokens: Sequence[str], vocab: Vocabulary) -> _Scan:
    """Find the commodity, the market and the numbers among ``tokens``."""
    scan, i = _Scan(), 0
    while i < len(tokens):
        token = tokens[i]
        if "0" <= token[0] <= "9" or _CURRENCY_PREFIX.match(token):
            number, i = _read_number(tokens, i, vocab)
            scan.numbers.append(number)
            continue
        small = token in FILLER_WORDS or token in CURRENCY_WORDS
        want_c, want_m = scan.commodity is None, scan.market is None
        hit = _name_at(tokens, i, vocab, want_c, want_m, near=False)
        if hit is None and not small:
            hit = _name_at(tokens, i, vocab, want_c, want_m, near=True)
        if hit is not None:
            kind, match = hit
            setattr(scan, kind, match.value)
            i += match.words
            continue
        if not small:
            # a second commodity or market is kept for the router; only a stranger is unknown
            if not _known_name(tokens, i, vocab):
                scan.unknown.append(token)
            scan.leftover.append((i, token))
        i += 1
    return scan


def _resolve(unit: int | None, commodity: int | None, vocab: Vocabulary) -> int | None:
    """A unit id, reading a bare bag as the commodity's own bag."""
    if unit == BAG:
        return vocab.default_bags.get(commodity) if commodity is not None else None
    return unit


def _commodity_error(scan: _Scan) -> str | None:
    if scan.commodity is not None:
        return None
    return "unknown_commodity" if scan.unknown else "missing_commodity"


_Amount = tuple[Decimal | None, int | None, str | None]  # value, unit id, error code


def _quantity(number: _Number | None, commodity: int | None, vocab: Vocabulary) -> _Amount:
    """Quantity, unit and error code of a quantity argument ("10bags", "500 kg")."""
    if number is None or number.value is None or not MIN_QUANTITY <= number.value <= MAX_QUANTITY:
        return None, None, "bad_quantity"
    unit = _resolve(number.unit, commodity, vocab)
    unresolved = unit is None and number.unit is not None and commodity is not None
    if number.bad_unit or number.stray or unresolved:
        return number.value, None, "unknown_unit"
    return number.value, unit, None


def _price(number: _Number | None, commodity: int | None, vocab: Vocabulary,
           unknown: Sequence[str]) -> _Amount:
    """Price, the unit it is for, and error code of a price argument ("4300/bag90")."""
    if number is None:  # with a stray word ("SOLD 10 bags maize abc") the price is unreadable
        return None, None, "bad_price" if unknown else "missing_price"
    if number.value is None or not MIN_PRICE <= number.value <= MAX_PRICE:
        return None, None, "bad_price"
    per = number.per if number.per is not None else number.unit
    unit = _resolve(per, commodity, vocab)
    if number.bad_unit or (per is not None and unit is None):
        return number.value, None, "unknown_unit"
    return number.value, unit, None


def _plain(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """HELP, START, STOP, OPEN and TELL: the words after the keyword are left to the router."""
    return Parsed(kw.command, kw.lang_hint, args=tuple(rest))


def _names(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """PRICE, STD, SUB, UNSUB and STORE: a commodity, optionally a market."""
    if kw.command == "unsub" and not rest:
        return Parsed("stop", kw.lang_hint)  # a bare UNSUB means "leave me alone": honour it
    scan = _scan(rest, vocab)
    error = _commodity_error(scan)
    if error is None and scan.market is None and scan.unknown and kw.command != "std":
        error = "unknown_market"
    return Parsed(kw.command, kw.lang_hint, commodity_id=scan.commodity,
                  market_id=scan.market, args=scan.args(), error=error)


def _is_number(word: str) -> bool:
    """A quantity or a price as typed: a digit first, or a currency before the digits."""
    return "0" <= word[0] <= "9" or bool(_CURRENCY_PREFIX.match(word))


def _sold(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """SOLD <qty><unit> <commodity> <price>[/unit] [day], quantity and commodity in either order.

    The day, when given, is day first (12/11, 12/11/2026, 2026-11-12, 12.11 last) or a word
    (yesterday, jana, hier, demb); without one the sale was today.
    """
    rest, day = take_sale_day(rest, _is_number)
    scan = _scan(rest, vocab)
    first = scan.numbers[0] if scan.numbers else None
    second = scan.numbers[1] if len(scan.numbers) > 1 else None
    if second is None and first is not None and first.money:
        first, second = None, first  # "SOLD maize 4300/bag": a price without a quantity
    elif first is not None and second is not None and first.money and not second.money:
        first, second = second, first
    qty, unit, qty_error = _quantity(first, scan.commodity, vocab)
    price, per, price_error = _price(second, scan.commodity, vocab, scan.unknown)
    return Parsed(
        "sold", kw.lang_hint, commodity_id=scan.commodity, market_id=scan.market,
        quantity=qty, unit_id=unit, price=price, price_unit_id=per,
        args=scan.args(first, second),
        error=_commodity_error(scan) or qty_error or price_error, sold_on=day,
    )


def _report(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """P <commodity> <market> <price>[/unit], from a price reporter."""
    scan = _scan(rest, vocab)
    number = next((n for n in scan.numbers if n.money), scan.numbers[0] if scan.numbers else None)
    price, per, price_error = _price(number, scan.commodity, vocab, scan.unknown)
    market_error = "unknown_market" if scan.market is None else None
    return Parsed(
        "report", kw.lang_hint, commodity_id=scan.commodity, market_id=scan.market,
        price=price, price_unit_id=per, args=scan.args(number),
        error=_commodity_error(scan) or market_error or price_error,
    )


def _order_ref(rest: Sequence[str]) -> tuple[int | None, int]:
    """The order number after optional "order"/"no" words, and the index after it."""
    i = 0
    while i < len(rest) and (rest[i] in ORDER_WORDS or rest[i] in FILLER_WORDS):
        i += 1
    if i < len(rest) and _ORDER_REF.fullmatch(rest[i]) and 0 < int(rest[i]) <= MAX_ORDER:
        return int(rest[i]), i + 1
    return None, i


def _order(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """TOTAL, CLOSE and WITHDRAW <order>."""
    ref, i = _order_ref(rest)
    return Parsed(kw.command, kw.lang_hint, order_ref=ref, args=tuple(rest[i:]),
                  error=None if ref else "missing_order")


def _join(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """JOIN <order> <qty>[unit]; a bare "bags" stays in args for the order's commodity."""
    ref, i = _order_ref(rest)
    if ref is None:
        return Parsed("join", kw.lang_hint, args=tuple(rest[i:]), error="missing_order")
    scan = _scan(rest[i:], vocab)
    number = scan.numbers[0] if scan.numbers else None
    qty, unit, error = _quantity(number, scan.commodity, vocab)
    args = scan.args(number)
    if number is not None and number.unit == BAG and unit is None:
        args = (number.unit_text, *args)
    return Parsed("join", kw.lang_hint, commodity_id=scan.commodity, quantity=qty,
                  unit_id=unit, order_ref=ref, args=args, error=error)


def _lang(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """LANG <code or language name>, named in any of the four languages."""
    words = [word for word in rest if word not in FILLER_WORDS]
    code = find_language(words, near=False) or find_language(words, near=True)
    return Parsed("lang", kw.lang_hint, lang_code=code, args=tuple(words[1:]),
                  error=None if code else "bad_lang")


def _offer(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """OFFER <crop> [grade] <price> <qty><unit> [market] [days], from a buyer or supplier.

    The number with a unit is the quantity, one with a currency or "/unit" the price;
    otherwise price, then quantity. The grade and the days stay in ``args``. Without
    numbers it is a listing (the buyer's own offers, or a leader's matching ones).
    """
    scan = _scan(rest, vocab)
    if not scan.numbers:
        return Parsed("offer", kw.lang_hint, commodity_id=scan.commodity, market_id=scan.market,
                      args=scan.args())
    quantity = next((n for n in scan.numbers if n.unit is not None and not n.money), None)
    price = next((n for n in scan.numbers if n.money), None)
    spare = [n for n in scan.numbers if n is not quantity and n is not price]
    if price is None and spare:
        price = spare.pop(0)
    if quantity is None and spare:
        quantity = spare.pop(0)
    qty, unit, qty_error = _quantity(quantity, scan.commodity, vocab)
    value, per, price_error = _price(price, scan.commodity, vocab, ())
    return Parsed(
        "offer", kw.lang_hint, commodity_id=scan.commodity, market_id=scan.market, quantity=qty,
        unit_id=unit, price=value, price_unit_id=per, args=scan.args(quantity, price),
        error=_commodity_error(scan) or (qty_error if qty_error == "unknown_unit" else None)
        or (price_error if price_error == "unknown_unit" else None),
    )


def _start(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """START; YES 12 (OUI, NDIO, WAAW and a number) confirms offer or draft order 12."""
    if rest and _ORDER_REF.fullmatch(rest[0]):
        return _order(Keyword(kw.word, "confirm", kw.langs), rest, vocab)
    return _plain(kw, rest, vocab)


def _withdraw(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """WITHDRAW 12 (a member's commitment), or WITHDRAW OFFER 12 (a buyer's offer)."""
    if rest and rest[0] in OFFER_WORDS:
        return _order(Keyword(kw.word, "unoffer", kw.langs), rest[1:], vocab)
    return _order(kw, rest, vocab)


def _sub(kw: Keyword, rest: Sequence[str], vocab: Vocabulary) -> Parsed:
    """SUB <crop> [market]; but JIUNGE 8 5 (an order number first) joins order 8."""
    if rest and _ORDER_REF.fullmatch(rest[0]):
        return _join(Keyword(kw.word, "join", kw.langs), rest, vocab)
    return _names(kw, rest, vocab)


_HANDLERS: Mapping[str, Callable[[Keyword, Sequence[str], Vocabulary], Parsed]] = {
    "help": _plain, "start": _plain, "stop": _plain, "open": _plain,
    "price": _names, "std": _names, "sub": _names, "unsub": _names, "store": _names,
    "sold": _sold, "report": _report, "lang": _lang, "join": _join,
    "total": _order, "close": _order, "cancel": _order, "withdraw": _order, "tell": _plain,
    "delivered": _order, "settle": _order, "payref": _order, "paid": _order, "dispute": _order,
    "offer": _offer, "unoffer": _order, "confirm": _order,
}
# Words that mean more than one thing, told apart by what follows (see each function).
_HANDLERS = {**_HANDLERS, "start": _start, "withdraw": _withdraw, "sub": _sub}


def _bare(tokens: Sequence[str], vocab: Vocabulary, near: bool) -> Parsed | None:
    """Only a commodity (and market) asks its price; only a language name sets it."""
    if len(tokens) == 1 and len(tokens[0]) >= 4 and (code := find_language(tokens, near)):
        return Parsed("lang", None, lang_code=code)
    if _name_at(tokens, 0, vocab, True, False, near) is None:
        return None
    scan = _scan(tokens, vocab)
    if scan.commodity is None or scan.unknown or scan.numbers:
        return None
    return Parsed("price", None, commodity_id=scan.commodity, market_id=scan.market,
                  args=scan.args())


def _tokens(text: str) -> list[str]:
    """The first words of the normalised first segment of ``text``."""
    return normalize_text(text[: 4 * MAX_CHARS])[:MAX_CHARS].split()[:MAX_WORDS]


def parse(text: str, vocab: Vocabulary, shortcode_keywords: Collection[str] = ()) -> Parsed:
    """Read one SMS into a ``Parsed`` command; never raises, whatever the text."""
    tokens = _tokens(text if isinstance(text, str) else "")
    shortcodes = [normalize_text(k).split() for k in shortcode_keywords if isinstance(k, str)]
    stripped = False
    while tokens:
        code = next((c for c in shortcodes if c and tokens[: len(c)] == c), None)
        if code is not None:
            tokens, stripped = tokens[len(code):], True
        elif tokens[0] in POLITE_WORDS and len(tokens) > 1:
            tokens = tokens[1:]
        else:
            break
    if not tokens:  # the service keyword alone asks what the service does
        return Parsed("help" if stripped else "empty", None)
    stop = stop_keyword(tokens)
    if stop is not None:
        return Parsed("stop", stop[0].lang_hint, args=tuple(tokens[stop[1]:]))
    # Only a first word opts out: "the truck will not stop here", "PRICE MAIZE STOP" and
    # "Basi asante" (ok thanks) are not a STOP; a stop word that did not open the message
    # as one (a weak word with more after it) is read as no command.
    kw = find_keyword(tokens[0], near=False)
    if kw is not None and kw.command == "stop":
        kw = None
    if kw is None:
        # A catalog word spelt right beats a keyword spelt wrong, and a keyword spelt wrong
        # beats a catalog word spelt wrong ("prics" is PRICES, not rice).
        bare = _bare(tokens, vocab, near=False)
        if bare is not None:
            return bare
        kw = find_keyword(tokens[0], near=True)
        if kw is None:
            return _bare(tokens, vocab, near=True) or Parsed("unknown", None, args=tuple(tokens))
    return _HANDLERS[kw.command](kw, tokens[1:], vocab)
