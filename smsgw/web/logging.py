"""Log redaction for the web app: now in ``smsgw.logs``, shared by every process.

``create_app`` calls ``smsgw.logs.configure_logging(settings, "web")``; the names below
are re-exported for the code and tests that import them from here.
"""
from __future__ import annotations

from smsgw.logs import LOGGERS, REDACTED, RedactingFilter, redact

__all__ = ["LOGGERS", "REDACTED", "RedactingFilter", "redact"]
