"""Farmer text in the farmer's language: gettext catalogs and Babel formats.

In a checkout, catalogs are read from ``locales/<lang>/LC_MESSAGES/messages.po`` and
compiled in memory on first use, so it runs without a separate compile step; a built
package ships them compiled (``.mo``, see ``smsgw.resources``). A message missing from a
catalog falls back to English (the msgid); a whole catalog missing is an error, never a
quiet switch to English for every farmer of that language.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gettext
import io
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_decimal
from babel.support import Translations

from smsgw import resources
from smsgw.config import LANGUAGES
from smsgw.messaging.encoding import normalize
from smsgw.po_compiler import compile_po

LOCALES_DIR = resources.locales_dir()
# How each language writes a currency in a short text: symbol and whether it leads.
_CURRENCY_SIGNS = {"KES": "KSh", "XOF": "FCFA"}
_SIGN_FIRST = {"en": True, "sw": True, "fr": False, "wo": False}


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated later, where it is shown."""
    return message


def load_catalog(root: Path, lang: str, domain: str) -> Translations:
    """The ``domain`` catalog for ``lang`` under ``root``: a ``.po`` compiled here, or a ``.mo``.

    Raises ``ConfigError`` (one line: the missing file, "reinstall smsgw") without either.
    """
    path, is_source = resources.catalog(root, lang, domain)
    if not is_source:
        with path.open("rb") as mo_file:
            return Translations(fp=mo_file, domain=domain)
    return Translations(fp=io.BytesIO(compile_po(path, lang, domain)), domain=domain)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog for ``lang`` (English and unknown languages: identity)."""
    if lang == "en" or lang not in LANGUAGES:
        return gettext.NullTranslations()
    return load_catalog(LOCALES_DIR, lang, "messages")


def check_catalogs() -> None:
    """Raise ``ConfigError`` now if any farmer or admin catalog is missing (a broken install).

    The admin's is only looked for, not loaded: the scheduler has no reason to import Flask.
    """
    for lang in LANGUAGES:
        translations(lang)
    resources.catalog(LOCALES_DIR / "admin", "fr", "admin")


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

    def number(self, value: decimal.Decimal | float, digits: int = 0) -> str:
        """A number with the locale's separators (GSM-7 spaces)."""
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return normalize(format_decimal(value, format=pattern, locale=self.lang), self.lang)

    def money(self, amount: decimal.Decimal | float, currency: str) -> str:
        """A price as farmers read it: whole units when large, sign placed per language."""
        digits = 0 if currency == "XOF" or abs(decimal.Decimal(amount)) >= 100 else 2
        number = self.number(amount, digits)
        sign = _CURRENCY_SIGNS.get(currency, currency)
        return f"{sign} {number}" if _SIGN_FIRST[self.lang] else f"{number} {sign}"

    def date(self, day: dt.date) -> str:
        """A short date (``14 Nov``) in the language."""
        return normalize(format_date(day, format="d MMM", locale=self.lang), self.lang)

    def full_date(self, day: dt.date, today: dt.date) -> str:
        """``14 Nov``, with the year (``15 Oct 2021``) when ``day`` is not in ``today``'s year."""
        if day.year == today.year:
            return self.date(day)
        return normalize(format_date(day, format="d MMM y", locale=self.lang), self.lang)

    def decimal(self, value: decimal.Decimal | float) -> str:
        """A number exactly as stored, no trailing zeros (``0.25``, ``13,5`` in French)."""
        exact = decimal.Decimal(str(value)).normalize()
        exponent = exact.as_tuple().exponent  # an int, or "n", "N", "F" for NaN and infinity
        digits = max(0, -exponent) if isinstance(exponent, int) else 0
        return self.number(exact, digits)

    # Here ``decimal`` names the method above: the module's Decimal goes by its own name.
    def percent(self, value: Decimal | float) -> str:
        """A signed whole percentage (``+4%``, ``-12%``)."""
        rounded = round(float(value))
        return f"{'+' if rounded > 0 else ''}{rounded}%"
