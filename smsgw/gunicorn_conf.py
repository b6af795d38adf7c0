"""gunicorn settings for the web process: ``gunicorn -c python:smsgw.gunicorn_conf ...``.

gunicorn writes its own error and access lines through handlers of its own, which
would bypass smsgw's format and redaction (an access line carries the URL, and AT
calls us with ``?token=``). Here its loggers hand every line to the root logger
instead, set up by ``smsgw.logs`` in the master and, by ``create_app``, in each worker.
The command line still sets workers, threads and the address (see the Procfile).
"""
from __future__ import annotations

import os
import sys
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

from smsgw.logs import configure_logging


class Logger(GunicornLogger):
    """gunicorn's logger, writing through smsgw's one handler (format and redaction)."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's set-up (levels, log config), then its own handlers replaced by the root's."""
        super().setup(cfg)
        redactor = configure_logging(os.environ, "web")
        for log in (self.error_log, self.access_log):
            for handler in [h for h in log.handlers if getattr(h, "_gunicorn", False)]:
                log.removeHandler(handler)
            log.addFilter(redactor)
            log.propagate = True


def _refuse_bad_settings() -> None:
    """Stop the master before it forks on a bad setting or a database that is not migrated:
    one line and exit code 2, as ``smsgw serve`` gives, not a traceback per worker."""
    from smsgw.config import ConfigError, load_settings
    from smsgw.startup import check_ready

    try:
        check_ready(load_settings())
    except ConfigError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        raise SystemExit(2) from None


_refuse_bad_settings()
logger_class = Logger
# Access lines on (gunicorn has none by default): the time and process come from our
# format; client address (the proxy's client with SMSGW_PROXY_HOPS), request, status,
# bytes, milliseconds, user agent.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
