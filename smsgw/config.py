"""Settings from the environment, with safe defaults.

Every setting has one name, used both as the environment variable and as the key in
the mapping given to ``create_app``; keys in that mapping override the environment.
"""
from __future__ import annotations

import decimal
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

PACKAGE_DIR = Path(__file__).resolve().parent
# In a checkout (or an editable install) the repository root holds migrations/, content/
# and locales/ next to the package; a built package carries its own copy (smsgw.resources).
PROJECT_ROOT = PACKAGE_DIR.parent
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file() and (
    PROJECT_ROOT / "migrations" / "env.py"
).is_file()

LANGUAGES = ("en", "fr", "sw", "wo")
GATEWAYS = ("console", "africastalking")
DATABASES = ("sqlite", "postgresql")


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and what to do."""


def default_instance_dir() -> Path:
    """Where the SQLite file and local state live when nothing else is configured."""
    configured = os.environ.get("SMSGW_INSTANCE_DIR")
    if configured:
        return Path(configured)
    # A checkout keeps its state beside the code; an installed package never writes into
    # site-packages, so it uses instance/ in the directory it is run from.
    return (PROJECT_ROOT if IN_CHECKOUT else Path.cwd()) / "instance"


def _defaults() -> dict[str, Any]:
    instance = default_instance_dir()
    return {
        "SMSGW_ENV": "development",
        "INSTANCE_DIR": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'smsgw.db'}",
        "SMSGW_GATEWAY": "console",
        "AT_USERNAME": "sandbox",
        "AT_API_KEY": "",
        "AT_SENDER_ID": "",
        "AT_API_BASE": "",
        "WEBHOOK_TOKEN": "",
        "SECRET_KEY": "dev-only-not-secret",
        "SMSGW_TIMEZONE": "Africa/Nairobi",
        "SMSGW_DEFAULT_LANG": "en",
        "SMSGW_DEFAULT_REGION": "KE",
        "SMSGW_ALLOWED_PREFIXES": "+254,+221",
        "USSD_RESUME_MINUTES": 5,
        "SMS_REPLIES_PER_HOUR": 10,
        "SMS_UNKNOWN_DAILY_CAP": 5,
        "SMS_UNKNOWN_REPLIES": 3,
        # Replies to everyone together per hour: many numbers each under their own cap
        # (an SMS-pumping attack) cannot run up the bill past this.
        "SMS_GLOBAL_REPLIES_PER_HOUR": 1000,
        # "KES:2000,XOF:30000": warn (log and audit, once a day) when the day's outbound
        # SMS cost in a currency passes its amount; empty: no alert.
        "SMS_DAILY_COST_ALERT": "",
        "SMS_SHORTCODE_KEYWORDS": "SOKO,SMSGW",
        "SMSGW_SENDER_IDS": "",
        "SMS_SEGMENT_COST": "KES:0.80,XOF:15",
        # How old a price may be and still be shown as current (farmer answers and
        # bulletins; smsgw.services.prices.price_max_age): days for every commodity, then
        # per commodity code ("tomatoes:7,onion:7"); older prices are said to be old.
        "PRICE_MAX_AGE_DAYS": 14,
        "PRICE_MAX_AGE_BY_COMMODITY": "",
        # How far (km) "best nearby market" looks from the farmer's market.
        "PRICE_NEARBY_KM": 150,
        "BULLETIN_QUIET_START": 21,
        "BULLETIN_QUIET_END": 6,
        "BULLETIN_DAILY_CAP": 3,
        "BULLETIN_BATCH_PAUSE": "0",
        # Messages a group leader may send the members (MSG ...) per group and local day.
        "GROUP_MESSAGES_PER_DAY": 3,
        # Buyers' offers (smsgw.services.offers): how far (km) from an offer's delivery
        # market groups hear of it, and how far (a fraction) a price may be from the market's
        # before the buyer, or a leader opening an order, must confirm it.
        "OFFER_MATCH_KM": 150,
        "OFFER_PRICE_BAND": 0.3,
        # The group's fee per order unit kept from each member's payout (sell orders) or
        # added to each member's cost (buy orders), per currency ("KES:50,XOF:500"); an
        # order's own fee (set at settlement) overrides it; empty: no fee.
        "GROUP_FEE_PER_UNIT": "",
        # The anomaly check on incoming prices (smsgw.services.price_checks.Policy): sources
        # whose in-range prices are published without review, the robust z-score and the
        # relative change that hold a price, the band around other markets' median, and how
        # much of a market's history the check reads.
        "PRICE_AUTO_APPROVE_SOURCES": "demo,import:wfp",
        "PRICE_ANOMALY_Z": 3.5,
        "PRICE_ANOMALY_MIN_CHANGE": 0.15,
        "PRICE_CROSS_MARKET_BAND": 0.6,
        "PRICE_HISTORY_DAYS": 90,
        "PRICE_MIN_HISTORY": 5,
        # How long a drain's claim on the messages it is sending holds without renewal:
        # another drain recovers them only after that (the drain renews it while alive).
        "OUTBOX_LEASE_SECONDS": 60,
        # PostgreSQL: give up connecting after this many seconds, and cancel a web
        # request's statement after this many (AT drops a USSD hop after about 10 s, so a
        # hung database must turn into an apology before then).
        "DATABASE_CONNECT_TIMEOUT": 3,
        "DATABASE_STATEMENT_TIMEOUT": 4,
        # A USSD hop not answered by then gets the apology (AT waits about 10 s).
        "USSD_HOP_SECONDS": 5,
        # Log lines: "text" (one readable line) or "json" (one object per line, for a
        # log shipper); the level for every process (smsgw.logs).
        "SMSGW_LOG_FORMAT": "text",
        "SMSGW_LOG_LEVEL": "INFO",
        # Reverse proxies in front of the web app that add X-Forwarded-For/-Proto/-Host
        # (0: none, the headers are ignored). Trusting more than there are lets a client
        # choose the address that sign-in throttling and the logs see.
        "SMSGW_PROXY_HOPS": 0,
        # An operator's session ends after this many minutes without a page, and in any
        # case this many hours after signing in.
        "ADMIN_IDLE_MINUTES": 30,
        "ADMIN_SESSION_HOURS": 12,
        # Store or sell (smsgw.services.storage): grain lost per month of storage (percent),
        # an optional cost per kg and month per currency ("KES:0.05,XOF:0.5"), the past
        # seasons a market needs before its evidence is spoken of, and the longest storage.
        "STORAGE_LOSS_PCT_MONTH": 2.0,
        "STORAGE_COST_PER_KG_MONTH": "",
        "STORAGE_MIN_YEARS": 5,
        "STORAGE_MAX_MONTHS": 9,
        "TESTING": False,
    }


_INT_KEYS = {
    "USSD_RESUME_MINUTES",
    "SMS_REPLIES_PER_HOUR",
    "SMS_UNKNOWN_DAILY_CAP",
    "SMS_UNKNOWN_REPLIES",
    "SMS_GLOBAL_REPLIES_PER_HOUR",
    "PRICE_MAX_AGE_DAYS",
    "BULLETIN_QUIET_START",
    "BULLETIN_QUIET_END",
    "BULLETIN_DAILY_CAP",
    "PRICE_HISTORY_DAYS",
    "PRICE_MIN_HISTORY",
    "GROUP_MESSAGES_PER_DAY",
    "OUTBOX_LEASE_SECONDS",
    "DATABASE_CONNECT_TIMEOUT",
    "DATABASE_STATEMENT_TIMEOUT",
    "USSD_HOP_SECONDS",
    "SMSGW_PROXY_HOPS",
    "ADMIN_IDLE_MINUTES",
    "ADMIN_SESSION_HOURS",
    "STORAGE_MIN_YEARS",
    "STORAGE_MAX_MONTHS",
}
_FLOAT_KEYS = {
    "PRICE_NEARBY_KM", "PRICE_ANOMALY_Z", "PRICE_ANOMALY_MIN_CHANGE", "PRICE_CROSS_MARKET_BAND",
    "OFFER_MATCH_KM", "OFFER_PRICE_BAND",
    "STORAGE_LOSS_PCT_MONTH",
}
_BOOL_KEYS = {"TESTING"}


def _coerce(key: str, value: Any) -> Any:
    if key in _INT_KEYS and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{key} must be a whole number, got {value!r}") from None
    if key in _FLOAT_KEYS and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if key in _BOOL_KEYS and isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return value


def load_settings(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the environment, then ``overrides``; validated."""
    settings = _defaults()
    for key in settings:
        if os.environ.get(key) not in (None, ""):
            settings[key] = os.environ[key]
    settings.update(overrides or {})
    settings = {key: _coerce(key, value) for key, value in settings.items()}
    settings["DATABASE_URL"] = normalize_database_url(str(settings["DATABASE_URL"]))
    validate(settings)
    return settings


def normalize_database_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` (as hosting platforms give them) use psycopg 3."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def validate(settings: Mapping[str, Any]) -> None:
    """Raise ConfigError with one clear line for the first thing that is wrong."""
    from smsgw.config_checks import problems

    check_database_url(settings["DATABASE_URL"])
    wrong = problems(settings)
    if wrong:
        raise ConfigError(wrong[0])
    if settings["SMSGW_GATEWAY"] not in GATEWAYS:
        raise ConfigError(
            f"SMSGW_GATEWAY must be one of {', '.join(GATEWAYS)}, got {settings['SMSGW_GATEWAY']!r}"
        )
    if settings["SMSGW_DEFAULT_LANG"] not in LANGUAGES:
        raise ConfigError(
            f"SMSGW_DEFAULT_LANG must be one of {', '.join(LANGUAGES)}, "
            f"got {settings['SMSGW_DEFAULT_LANG']!r}"
        )
    if settings["SMSGW_ENV"] == "production":
        missing = [
            key
            for key in ("SECRET_KEY", "WEBHOOK_TOKEN")
            if not settings[key] or settings[key] == _defaults()[key]
        ]
        if missing:
            raise ConfigError(
                f"SMSGW_ENV=production needs {' and '.join(missing)} set; "
                "refusing to start without them"
            )
    from smsgw.logs import log_options  # here: smsgw.logs imports this module

    log_options(settings)  # SMSGW_LOG_FORMAT and SMSGW_LOG_LEVEL
    if int(settings["SMSGW_PROXY_HOPS"]) < 0:
        raise ConfigError(f"SMSGW_PROXY_HOPS must be a whole number, 0 or more, got {settings['SMSGW_PROXY_HOPS']!r}")
    if settings["SMSGW_GATEWAY"] == "africastalking" and not settings["AT_API_KEY"]:
        raise ConfigError("SMSGW_GATEWAY=africastalking needs AT_USERNAME and AT_API_KEY set")


def check_database_url(url: str) -> sa.URL:
    """Parse DATABASE_URL and check its driver is installed."""
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise ConfigError(
            f"DATABASE_URL names an unknown database: {url.split(':', 1)[0]!r} "
            "(use sqlite:///path/to/smsgw.db or postgresql://user@host/db)"
        ) from None
    except (ArgumentError, ValueError):
        shown = f" {url!r}" if "@" not in url else ""  # never print a password
        raise ConfigError(
            f"DATABASE_URL is not a database URL{shown} "
            "(expected e.g. sqlite:///instance/smsgw.db or postgresql://user@host/db)"
        ) from None
    if parsed.get_backend_name() not in DATABASES:
        raise ConfigError(
            f"DATABASE_URL names a database smsgw does not run on: {parsed.get_backend_name()!r} "
            "(use sqlite:///path/to/smsgw.db or postgresql://user@host/db)"
        )
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigError(
            f"DATABASE_URL needs the Python driver {getattr(exc, 'name', None) or parsed.drivername!r}, which is not "
            "installed (use postgresql://..., which smsgw's own driver psycopg serves)"
        ) from None
    return parsed


def defaults() -> dict[str, Any]:
    """Every setting's default, typed as ``load_settings`` returns it: the one place defaults live.

    Classes that hold a few settings (``services.price_checks.Policy``,
    ``services.bulletins.Policy``) take their own defaults from here.
    """
    return {key: _coerce(key, value) for key, value in _defaults().items()}


def items(value: Any) -> list[str]:
    """A comma-separated setting as its stripped, non-empty items."""
    return [item.strip() for item in str(value or "").split(",") if item.strip()]


def allowed_prefixes(settings: Mapping[str, Any]) -> tuple[str, ...]:
    """SMSGW_ALLOWED_PREFIXES as prefixes (empty: every country)."""
    return tuple(items(settings.get("SMSGW_ALLOWED_PREFIXES", "")))


def group_fees(settings: Mapping[str, Any]) -> dict[str, decimal.Decimal]:
    """GROUP_FEE_PER_UNIT (``KES:50,XOF:500``) as {currency: fee per order unit}."""
    pairs = [item.split(":", 1) for item in items(settings.get("GROUP_FEE_PER_UNIT", "")) if ":" in item]
    return {currency.strip().upper(): decimal.Decimal(amount.strip()) for currency, amount in pairs}


def sender_ids(settings: Mapping[str, Any]) -> dict[str, str]:
    """SMSGW_SENDER_IDS (``KE=SOKO,SN=SOKOSN``) as {country: sender id}."""
    pairs = [item.split("=", 1) for item in items(settings.get("SMSGW_SENDER_IDS", "")) if "=" in item]
    return {country.strip().upper(): sender.strip() for country, sender in pairs}
