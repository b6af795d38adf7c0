"""One check per setting: each bad value is one line naming the variable and the fix.

``smsgw.config.validate`` runs these at every start (the web app, the scheduler, every
command), so a typo in the environment stops the process before it serves anyone,
instead of failing on the first farmer who meets it.
"""
from __future__ import annotations

import decimal
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

# Africa's Talking takes an alphanumeric sender id of up to 11 characters, or a short code.
_SENDER_ID = re.compile(r"^(?=.*[A-Za-z0-9])[A-Za-z0-9 ._-]{1,11}$|^\d{3,15}$")
_PREFIX = re.compile(r"^\+\d{1,6}$")
_KEYWORD = re.compile(r"^[A-Za-z0-9]{1,20}$")
ENVIRONMENTS = ("development", "production")


class Invalid(ValueError):
    """A setting's value is wrong; the message says what was expected."""


def _items(value: Any) -> list[str]:
    return [item.strip() for item in str(value or "").split(",") if item.strip()]


def timezone(value: Any) -> None:
    """An IANA time zone name."""
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("is not a time zone (use an IANA name such as Africa/Nairobi or Africa/Dakar)") from None


def region(value: Any) -> None:
    """A two-letter country code that phone numbers can be read for."""
    if str(value).upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise Invalid("is not a country code (use two letters, such as KE or SN)")


def sender_id(value: Any) -> None:
    """Empty, or a sender id Africa's Talking accepts."""
    if value and not _SENDER_ID.match(str(value)):
        raise Invalid("is not a sender id (up to 11 letters or digits, or a short code of digits)")


def sender_ids(value: Any) -> None:
    """``KE=SOKO,SN=SOKOSN``: a sender id per country."""
    for item in _items(value):
        country, equals, sender = item.partition("=")
        if (
            not equals
            or country.strip().upper() not in phonenumbers.SUPPORTED_REGIONS
            or not _SENDER_ID.match(sender.strip())
        ):
            raise Invalid(f"has {item!r}; write COUNTRY=SENDER pairs separated by commas, e.g. KE=SOKO,SN=SOKOSN")


def prefixes(value: Any) -> None:
    """``+254,+221``: international prefixes."""
    for item in _items(value):
        if not _PREFIX.match(item):
            raise Invalid(f"has {item!r}; write prefixes such as +254,+221 (a + and up to 6 digits each)")


def money_list(value: Any) -> None:
    """``KES:0.80,XOF:15``: an amount per currency."""
    for item in _items(value):
        currency, colon, amount = item.partition(":")
        try:
            number = decimal.Decimal(amount.strip())
        except decimal.InvalidOperation:
            number = decimal.Decimal("NaN")
        if not colon or not re.fullmatch(r"[A-Za-z]{3}", currency.strip()) or not number.is_finite() or number < 0:
            raise Invalid(f"has {item!r}; write CUR:amount pairs separated by commas, e.g. KES:0.80,XOF:15")


def keywords(value: Any) -> None:
    """``SOKO,SMSGW``: single words."""
    for item in _items(value):
        if not _KEYWORD.match(item):
            raise Invalid(f"has {item!r}; write single words separated by commas, e.g. SOKO,SMSGW")


_DAYS_ITEM = re.compile(r"^[a-z0-9_-]+\s*[:=]\s*\d{1,4}$")


def day_overrides(value: Any) -> None:
    """Commodity codes with a number of days: ``tomatoes:7,onion:7`` (or empty)."""
    if isinstance(value, Mapping):
        return
    wrong = [item for item in _items(value) if not _DAYS_ITEM.match(item.lower())]
    if wrong:
        raise Invalid(f"needs commodity:days pairs such as tomatoes:7,onion:7, got {wrong[0]!r}")


def environment(value: Any) -> None:
    """``development`` or ``production``."""
    if value not in ENVIRONMENTS:
        raise Invalid(f"must be one of {', '.join(ENVIRONMENTS)}")


def at_least(low: float, high: float | None = None, above: bool = False) -> Callable[[Any], None]:
    """A finite number from ``low`` (or above it, with ``above``) up to ``high``."""

    def check(value: Any) -> None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise Invalid("must be a number") from None
        too_low = number <= low if above else number < low
        if not math.isfinite(number) or too_low or (high is not None and number > high):
            if above:
                raise Invalid("must be above zero" if low == 0 else f"must be above {low:g}")
            raise Invalid(f"must be between {low:g} and {high:g}" if high is not None else f"must be at least {low:g}")

    return check


positive = at_least(0, above=True)


CHECKS: dict[str, Callable[[Any], None]] = {
    "SMSGW_ENV": environment,
    "SMSGW_TIMEZONE": timezone,
    "SMSGW_DEFAULT_REGION": region,
    "SMSGW_ALLOWED_PREFIXES": prefixes,
    "AT_SENDER_ID": sender_id,
    "SMSGW_SENDER_IDS": sender_ids,
    "SMS_SEGMENT_COST": money_list,
    "SMS_DAILY_COST_ALERT": money_list,
    "SMS_SHORTCODE_KEYWORDS": keywords,
    "USSD_RESUME_MINUTES": at_least(0),
    "SMS_REPLIES_PER_HOUR": at_least(0),
    "SMS_UNKNOWN_DAILY_CAP": at_least(0),
    "SMS_UNKNOWN_REPLIES": at_least(0),
    "SMS_GLOBAL_REPLIES_PER_HOUR": at_least(0),
    "PRICE_MAX_AGE_DAYS": at_least(0),
    "PRICE_MAX_AGE_BY_COMMODITY": day_overrides,
    "PRICE_NEARBY_KM": at_least(0),
    "BULLETIN_QUIET_START": at_least(0, 23),
    "BULLETIN_QUIET_END": at_least(0, 23),
    "BULLETIN_DAILY_CAP": at_least(0),
    "BULLETIN_BATCH_PAUSE": at_least(0, 60),
    "GROUP_MESSAGES_PER_DAY": at_least(0),
    "OFFER_MATCH_KM": at_least(0),
    "OFFER_PRICE_BAND": positive,
    "GROUP_FEE_PER_UNIT": money_list,
    "PRICE_ANOMALY_Z": positive,
    "PRICE_ANOMALY_MIN_CHANGE": at_least(0),
    "PRICE_CROSS_MARKET_BAND": positive,
    "PRICE_HISTORY_DAYS": positive,
    "PRICE_MIN_HISTORY": at_least(1),
    "OUTBOX_LEASE_SECONDS": positive,
    "DATABASE_CONNECT_TIMEOUT": positive,
    "DATABASE_STATEMENT_TIMEOUT": positive,
    "USSD_HOP_SECONDS": positive,
    "ADMIN_IDLE_MINUTES": at_least(1),
    "ADMIN_SESSION_HOURS": at_least(1),
    "STORAGE_LOSS_PCT_MONTH": at_least(0, 100),
    "STORAGE_COST_PER_KG_MONTH": money_list,
    "STORAGE_MIN_YEARS": at_least(1),
    "STORAGE_MAX_MONTHS": at_least(1, 11),
}


def problems(settings: Mapping[str, Any]) -> list[str]:
    """One line per bad setting: the variable, its value, and what to write instead."""
    lines = []
    for key, check in CHECKS.items():
        if key not in settings:
            continue
        try:
            check(settings[key])
        except Invalid as exc:
            lines.append(f"{key}={settings[key]!r} {exc}")
    return lines
