"""Quantities said the way each language says them: "200 bags of 90 kg of maize".

A unit's short label ("90kg bag") is fine in a price column but not in a sentence. Here
each kind of unit has a gettext template with its plural forms, chosen with Babel's
plural rule for the number (French 1.5 is singular, English 1.5 plural), and the
translation carries the grammar: word order and noun-class agreement in Swahili
("magunia 200 ya kilo 90 ya mahindi"), French elision ("d'arachide").
"""

from __future__ import annotations

import decimal
import re

from babel import Locale

from smsgw.i18n import N_, Text
from smsgw.models import Commodity, Unit

# (singular, plural) per kind of unit, with and without the crop: two plain msgids rather
# than one ngettext entry, because the form is chosen by Babel's CLDR rule (decimals
# included), not by the catalog's integer formula. ``size`` is one bag's or crate's kg.
WITH_CROP = {
    "bag": (N_("%(n)s bag of %(size)s kg of %(crop)s"), N_("%(n)s bags of %(size)s kg of %(crop)s")),
    "crate": (N_("%(n)s crate of %(size)s kg of %(crop)s"), N_("%(n)s crates of %(size)s kg of %(crop)s")),
    "kg": (N_("%(n)s kilogram of %(crop)s"), N_("%(n)s kilograms of %(crop)s")),
    "quintal": (N_("%(n)s quintal of %(crop)s"), N_("%(n)s quintals of %(crop)s")),
    "tonne": (N_("%(n)s tonne of %(crop)s"), N_("%(n)s tonnes of %(crop)s")),
}
BARE = {
    "bag": (N_("%(n)s bag of %(size)s kg"), N_("%(n)s bags of %(size)s kg")),
    "crate": (N_("%(n)s crate of %(size)s kg"), N_("%(n)s crates of %(size)s kg")),
    "kg": (N_("%(n)s kilogram"), N_("%(n)s kilograms")),
    "quintal": (N_("%(n)s quintal"), N_("%(n)s quintals")),
    "tonne": (N_("%(n)s tonne"), N_("%(n)s tonnes")),
}
_BAG = re.compile(r"^bag(\d+)$")
# French drops the e of "de" before a vowel (not before h: "de haricots" has an h aspire).
_ELISION = {"fr": re.compile(r"\bde ([aeiouyàâäéèêëîïôöùûüAEIOUYÀÂÉÈÊÎÔÙÛ])")}


def unit_kind(unit: Unit) -> tuple[str, int | None]:
    """(kind, kg per piece): ``bag90`` -> ("bag", 90), ``crate`` -> ("crate", 64), ``kg`` -> ("kg", None)."""
    found = _BAG.match(unit.code)
    if found:
        return "bag", int(found.group(1))
    if unit.code == "crate":
        return "crate", int(unit.factor)
    if unit.code in ("quintal", "tonne"):
        return unit.code, None
    return "kg", None


def is_one(lang: str, value: decimal.Decimal) -> bool:
    """True when ``value`` takes the singular in ``lang`` (Babel's CLDR plural rule).

    Wolof nouns do not change for number (CLDR has only "other"), but the words that
    agree with them do (bu/yu): there a count of exactly one is singular.
    """
    rule = Locale.parse(lang).plural_form
    if not rule.tags:
        return value == 1
    return rule(value) == "one"


# Words that keep their capital inside a sentence (from a place name).
PROPER_WORDS = {"Irish"}


def crop_word(commodity: Commodity, lang: str) -> str:
    """The crop's name inside a sentence: "maize", "pommes de terre", "DAP" kept as is."""
    name = commodity.name(lang)
    if name.split(" ")[0] in PROPER_WORDS:
        return name
    if len(name) > 1 and name[0].isupper() and name[1].islower():
        return name[0].lower() + name[1:]
    return name


def _visible(value: decimal.Decimal) -> decimal.Decimal:
    """``value`` as it is written: three decimals at most, no trailing zeros. A stored
    ``1.000`` is ``1``, so it takes the singular (CLDR counts visible decimals)."""
    exact = value.quantize(decimal.Decimal("0.001")).normalize()
    return exact.quantize(decimal.Decimal(1)) if exact == exact.to_integral_value() else exact


def _number(t: Text, value: decimal.Decimal) -> str:
    exponent = value.as_tuple().exponent
    return t.number(value, max(0, -exponent) if isinstance(exponent, int) else 0)


def quantity_phrase(
    t: Text, value: decimal.Decimal | int, unit: Unit, commodity: Commodity | None = None
) -> str:
    """``200 bags of 90 kg of maize`` / ``200 sacs de 100 kg d'arachide`` /
    ``magunia 200 ya kilo 90 ya mahindi``; without ``commodity``, just the quantity."""
    value = _visible(decimal.Decimal(value))
    kind, size = unit_kind(unit)
    table = WITH_CROP if commodity is not None else BARE
    singular, plural = table[kind]
    msgid = singular if is_one(t.lang, value) else plural
    values = {"n": _number(t, value), "size": size or "", "crop": crop_word(commodity, t.lang) if commodity else ""}
    text = t(msgid, **values)
    elision = _ELISION.get(t.lang)
    return elision.sub(r"d'\1", text) if elision else text
