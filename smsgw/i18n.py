"""Farmer text in the farmer's language: gettext catalogs and Babel formats.

Catalogs are read from ``locales/<lang>/LC_MESSAGES/messages.po`` and compiled in
memory on first use, so a checkout runs without a separate compile step. A message
missing from a catalog falls back to English (the msgid).
"""

from __future__ import annotations

import datetime as dt
import decimal
import gettext
import io
from functools import cache

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from smsgw.config import LANGUAGES, PROJECT_ROOT
from smsgw.messaging.encoding import normalize

LOCALES_DIR = PROJECT_ROOT / "locales"
# How each language writes a currency in a short text: symbol and whether it leads.
_CURRENCY_SIGNS = {"KES": "KSh", "XOF": "FCFA"}
_SIGN_FIRST = {"en": True, "sw": True, "fr": False, "wo": False}


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated later, where it is shown."""
    return message


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog for ``lang`` (English and unknown languages: identity)."""
    path = LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or lang not in LANGUAGES or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


class Text:
    """Translation and formatting for one language, GSM-7 safe."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else "en"
        self._t = translations(self.lang)

    def __call__(self, message: str, **values: object) -> str:
        """Translate ``message`` and fill its ``%(name)s`` placeholders."""
        text = self._t.gettext(message)
        return text % values if values else text

    def plural(self, singular: str, plural: str, n: int, **values: object) -> str:
        """Translate with the language's plural rule; ``n`` is available as %(n)s."""
        return self._t.ngettext(singular, plural, n) % {"n": n, **values}

    def number(self, value: decimal.Decimal | float | int, digits: int = 0) -> str:
        """A number with the locale's separators (GSM-7 spaces)."""
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return normalize(format_decimal(value, format=pattern, locale=self.lang), self.lang)

    def money(self, amount: decimal.Decimal | float | int, currency: str) -> str:
        """A price as farmers read it: whole units when large, sign placed per language."""
        digits = 0 if currency == "XOF" or abs(decimal.Decimal(amount)) >= 100 else 2
        number = self.number(amount, digits)
        sign = _CURRENCY_SIGNS.get(currency, currency)
        return f"{sign} {number}" if _SIGN_FIRST[self.lang] else f"{number} {sign}"

    def date(self, day: dt.date) -> str:
        """A short date (``14 Nov``) in the language."""
        return normalize(format_date(day, format="d MMM", locale=self.lang), self.lang)

    def percent(self, value: decimal.Decimal | float) -> str:
        """A signed whole percentage (``+4%``, ``-12%``)."""
        rounded = round(float(value))
        return f"{'+' if rounded > 0 else ''}{rounded}%"
