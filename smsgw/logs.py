"""Logging for every process (web under gunicorn, scheduler, command line), set up once.

One handler on the root logger writes each line to the process's stderr, in one format
naming the process (``text``, or ``json``: one object per line for a log shipper). The
redaction is in that handler's formatter, applied to the final text, traceback included:
whatever library logs, ``token=`` values and the configured secrets (WEBHOOK_TOKEN,
AT_API_KEY, the database password) become ``[redacted]`` and phone numbers are masked.

A ``RedactingFilter`` also goes on our loggers and gunicorn's and Werkzeug's, and on
any other handler the root logger has, so that a record is already clean when it
reaches a handler we do not own (syslog set up by an operator, a test's capture).
"""
from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from contextlib import redirect_stderr
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from smsgw.config import ConfigError
from smsgw.phones import mask_phone

PROCESSES = ("web", "scheduler", "cli")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
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
        self.secrets: list[str] = []
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Also redact these literal values, and their URL-encoded forms."""
        known = set(self.secrets)
        for secret in secrets:
            # Short values would redact ordinary words; a real token is long.
            if secret and len(secret) >= 6:
                known.update({secret, quote(secret, safe=""), quote(quote(secret, safe=""), safe="")})
        # Longest first, so a secret is replaced before any part of it.
        self.secrets = sorted(known, key=len, reverse=True)

    def clean(self, text: str) -> str:
        """``text`` redacted with this filter's secrets."""
        return redact(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record (always kept)."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a logging filter must never raise into the caller)
            return True  # a broken format string: the handler reports it, redacted
        clean = self.clean(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self.clean(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """``<UTC time> <process>[<pid>] <LEVEL> <logger>: <message>``, the whole text redacted."""

    def __init__(self, process: str, redactor: RedactingFilter) -> None:
        super().__init__(f"%(asctime)s {process}[%(process)d] %(levelname)s %(name)s: %(message)s")
        self.process = process
        self.redactor = redactor

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """UTC with milliseconds, ``2025-03-01 08:15:00.123Z``: one clock for every host."""
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        return moment.isoformat(sep=" ", timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        """The formatted line, then redacted: message, traceback and stack alike."""
        return self.redactor.clean(super().format(record))


class JsonFormatter(TextFormatter):
    """One JSON object per line: time, level, process, pid, logger, message, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, each text field redacted."""
        entry: dict[str, Any] = {
            "time": self.formatTime(record).replace(" ", "T"),  # ISO 8601 for the shipper
            "level": record.levelname,
            "process": self.process,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        clean = {key: self.redactor.clean(value) if isinstance(value, str) else value for key, value in entry.items()}
        return json.dumps(clean, ensure_ascii=False)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to the process's own stderr, looked up at each line.

    ``sys.__stderr__`` rather than ``sys.stderr``: a caller that swaps ``sys.stderr``
    for a while (click's test runner) would leave a handler holding a closed stream.
    """

    def __init__(self) -> None:
        super().__init__(sys.__stderr__ or sys.stderr)

    @property
    def stream(self) -> TextIO:
        """The process's stderr."""
        return sys.__stderr__ or sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """Ignored: always the process's stderr."""

    def handleError(self, record: logging.LogRecord) -> None:
        """Report a record that cannot be formatted as logging does, but redacted (it prints the arguments)."""
        report = io.StringIO()
        with redirect_stderr(report):
            super().handleError(record)
        formatter = self.formatter
        text = report.getvalue()
        if isinstance(formatter, TextFormatter):
            text = formatter.redactor.clean(text)
        if text:
            self.stream.write(text)


_redactor = RedactingFilter()


def log_options(settings: Mapping[str, Any]) -> tuple[str, int]:
    """(format, level) from SMSGW_LOG_FORMAT and SMSGW_LOG_LEVEL; ConfigError when wrong."""
    fmt = str(settings.get("SMSGW_LOG_FORMAT") or "text").strip().lower()
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"SMSGW_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    level = str(settings.get("SMSGW_LOG_LEVEL") or "INFO").strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"SMSGW_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return fmt, logging.getLevelName(level)


def _secrets(settings: Mapping[str, Any]) -> list[str]:
    """The configured values that must never be printed."""
    try:
        password = make_url(str(settings.get("DATABASE_URL") or "")).password or ""
    except (ArgumentError, ValueError):  # not a URL: config validation reports it, not logging
        password = ""
    return [str(settings.get("WEBHOOK_TOKEN") or ""), str(settings.get("AT_API_KEY") or ""), str(password)]


def configure_logging(settings: Mapping[str, Any], process: str) -> RedactingFilter:
    """Set up logging for ``process`` (web, scheduler or cli); safe to call again.

    ``settings`` is the loaded settings or any mapping with the same keys (the command
    line passes ``os.environ``). Returns the redaction filter, for loggers created later.
    """
    if process not in PROCESSES:
        raise ValueError(f"process must be one of {', '.join(PROCESSES)}, got {process!r}")
    fmt, level = log_options(settings)
    _redactor.add_secrets(_secrets(settings))
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        root.addHandler(handler)
    handler.setFormatter((JsonFormatter if fmt == "json" else TextFormatter)(process, _redactor))
    # The handler filters by level too: loggers that set their own level (gunicorn's,
    # Werkzeug's: INFO) would otherwise pass INFO lines under SMSGW_LOG_LEVEL=WARNING.
    handler.setLevel(level)
    root.setLevel(level)
    for other in root.handlers:
        other.addFilter(_redactor)
    names = set(LOGGERS) | {name for name in logging.root.manager.loggerDict if name.startswith("smsgw.")}
    for name in sorted(names):
        logging.getLogger(name).addFilter(_redactor)
    # APScheduler logs every run of the 3-second drain at INFO, Alembic its plugins at
    # every start; a failing job still shows (ERROR), and DEBUG shows everything.
    for noisy in ("apscheduler", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level > logging.DEBUG else logging.NOTSET)
    _install_excepthooks()
    return _redactor


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """An exception nobody caught, logged (so redacted) instead of printed raw."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("smsgw").critical("uncaught %s", exc_type.__name__, exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    """A thread's uncaught exception, logged like the main thread's."""
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("smsgw").critical(
        "uncaught %s in thread %s", args.exc_type.__name__, name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _install_excepthooks() -> None:
    """Route uncaught exceptions through logging, unless someone else (a test runner, a
    debugger) has installed hooks of their own."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _log_uncaught
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _log_uncaught_in_thread
