"""Log redaction: no webhook token and no full phone number in a log line.

Werkzeug's and gunicorn's access lines carry the request URL, and AT calls us with
``?token=WEBHOOK_TOKEN``; our own lines and the tracebacks Flask logs may carry phone
numbers (SQL errors quote their parameters). A filter on each logger rewrites the record
before any handler sees it: ``token=`` values (plain, percent-encoded, double-encoded)
and the configured secrets become ``[redacted]``, phone numbers are masked with
``mask_phone``.

A logger's filters only see records logged to that very logger, not those propagated
from its children, so the filter goes on every ``smsgw.*`` logger that exists when the
app is built (every module creates its logger at import) as well as the named ones.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

from flask import Flask

from smsgw.phones import mask_phone

LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "smsgw")
REDACTED = "[redacted]"

# token=VALUE in a URL, and token%3DVALUE / token%253DVALUE in a URL encoded once or
# twice inside another: each value runs to the "&" of its own level of encoding.
_END = r"[^&\s\"'<>#;,]"
_TOKENS = (
    re.compile(rf"(?i)(token=)({_END}+)"),
    re.compile(rf"(?i)(token%3D)((?:(?!%26){_END})+)"),
    re.compile(rf"(?i)(token%253D)((?:(?!%2526){_END})+)"),
)
# +254712345678 and its encoded forms (%2B, %252B); 7 to 15 digits as in E.164.
_PHONE = re.compile(r"(?i)(\+|%2B|%252B)([0-9]{7,15})(?![0-9])")
# Phone-bearing query fields whose value may be written without a +.
_PHONE_FIELD = re.compile(r"(?i)(\b(?:phoneNumber|phone|msisdn|from)=)([0-9]{7,15})(?![0-9])")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with tokens and secrets replaced and phone numbers masked."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern in _TOKENS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    text = _PHONE.sub(lambda m: m.group(1) + mask_phone("+" + m.group(2))[1:], text)
    return _PHONE_FIELD.sub(lambda m: m.group(1) + mask_phone("+" + m.group(2))[1:], text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, traceback and stack in place; never drops one."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Also redact these literal values, and their URL-encoded forms."""
        for secret in secrets:
            # Short values would redact ordinary words; a real token is long.
            if secret and len(secret) >= 6:
                self.secrets.update({secret, quote(secret, safe=""), quote(quote(secret, safe=""), safe="")})

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record (always kept)."""
        secrets = sorted(self.secrets, key=len, reverse=True)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a logging filter must never raise into the caller)
            return True  # a broken format string: the handler reports it, as without us
        clean = redact(message, secrets)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


def install_redaction(app: Flask) -> RedactingFilter:
    """Put one RedactingFilter (knowing the app's WEBHOOK_TOKEN) on our loggers."""
    names = set(LOGGERS) | {name for name in logging.root.manager.loggerDict if name.startswith("smsgw.")}
    loggers = [logging.getLogger(name) for name in sorted(names)] + [app.logger]
    found = next((f for lg in loggers for f in lg.filters if isinstance(f, RedactingFilter)), None)
    redactor = found or RedactingFilter()
    redactor.add_secrets([str(app.config.get("WEBHOOK_TOKEN") or "")])
    for logger in loggers:
        if redactor not in logger.filters:
            logger.addFilter(redactor)
    return redactor
