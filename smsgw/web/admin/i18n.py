"""Admin text in the operator's language: its own gettext domain, and Babel formats.

The admin catalog lives in ``locales/admin/<lang>/LC_MESSAGES/admin.po``, apart from
the farmer catalog. Python code marks admin text with ``tr``, ``tr_l`` (lazy, for form
labels) and ``tr_n`` (plurals), never ``t``/``N_``/``_``, so the farmer extraction
(``pybabel extract -F locales/babel.cfg``) does not pick admin sentences up.
Templates use ``_()``/``ngettext()`` through Jinja's i18n extension.
"""
from __future__ import annotations

import datetime as dt
import decimal
import gettext
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent
from flask import Flask, current_app, g, request, session
from markupsafe import escape

from smsgw import resources
from smsgw.i18n import load_catalog

LOCALES_DIR = resources.locales_dir() / "admin"
DOMAIN = "admin"
ADMIN_LANGUAGES = ("en", "fr")


@cache
def admin_translations(lang: str) -> gettext.NullTranslations:
    """The admin catalog for ``lang`` (English: identity); a missing one is a ``ConfigError``."""
    if lang == "en" or lang not in ADMIN_LANGUAGES:
        return gettext.NullTranslations()
    return load_catalog(LOCALES_DIR, lang, DOMAIN)


def current_language() -> str:
    """The signed-in operator's language, else the one chosen or the browser's."""
    lang = g.get("admin_lang")
    if lang:
        return lang
    from flask_login import current_user

    wanted = getattr(current_user, "language", None) if current_user else None
    if wanted not in ADMIN_LANGUAGES:
        wanted = session.get("admin_lang")
    if wanted not in ADMIN_LANGUAGES:
        wanted = request.accept_languages.best_match(ADMIN_LANGUAGES) or "en"
    g.admin_lang = wanted
    return wanted


def tr(message: str, **values: Any) -> str:
    """``message`` in the operator's language, its ``%(name)s`` placeholders filled."""
    text = admin_translations(current_language()).gettext(message)
    return text % values if values else text


def tr_n(singular: str, plural_form: str, n: int, **values: Any) -> str:
    """Singular or plural by the language's rule; ``n`` is available as ``%(num)s``."""
    text = admin_translations(current_language()).ngettext(singular, plural_form, n)
    return text % {"num": n, **values}


class LazyText:
    """A message translated when it is shown (form labels are built at import time)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return tr(self.message)

    def __html__(self) -> str:
        return str(escape(str(self)))

    def __len__(self) -> int:
        return len(str(self))

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self.message)


def tr_l(message: str) -> LazyText:
    """Mark ``message`` for the admin catalog, translated where it is rendered."""
    return LazyText(message)


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["SMSGW_TIMEZONE"])


def fmt_datetime(value: dt.datetime | None, style: str = "short") -> str:
    """A timestamp in the service's zone, written the operator's way."""
    if value is None:
        return "—"
    return format_datetime(value, style, tzinfo=_zone(), locale=current_language())


def fmt_date(value: dt.date | None, style: str = "medium") -> str:
    """A date written the operator's way."""
    if value is None:
        return "—"
    return format_date(value, style, locale=current_language())


def fmt_money(amount: decimal.Decimal | float | None, currency: str | None) -> str:
    """An amount with its currency, per the operator's locale."""
    if amount is None:
        return "—"
    if not currency:
        return fmt_number(amount, 2)
    return format_currency(amount, currency, locale=current_language())


def fmt_number(value: decimal.Decimal | float | None, digits: int = 0) -> str:
    """A number with the locale's separators and ``digits`` decimals at most."""
    if value is None:
        return "—"
    pattern = "#,##0" + ("." + "#" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=current_language())


def fmt_percent(value: float | decimal.Decimal | None) -> str:
    """A share (0.93) as a percentage (93 %)."""
    if value is None:
        return "—"
    return format_percent(value, locale=current_language())


def local_today() -> dt.date:
    """Today in the service's zone."""
    return dt.datetime.now(_zone()).date()


def init_app(app: Flask) -> None:
    """Give templates ``_``/``ngettext`` in the operator's language and the format filters."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: admin_translations(current_language()).gettext(message),
        ngettext=lambda singular, plural_form, n: admin_translations(current_language()).ngettext(
            singular, plural_form, n
        ),
        newstyle=True,
    )
    app.jinja_env.filters.update(
        datetime=fmt_datetime,
        date=fmt_date,
        money=fmt_money,
        number=fmt_number,
        percent=fmt_percent,
    )
