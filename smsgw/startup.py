"""Checks a process makes before it serves anyone: are its translations installed, and
is the database's schema this code's?

A missing catalog would answer Swahili, French and Wolof farmers in English; a web worker
or scheduler started on an empty or older database would fail on the
first farmer's request with a missing table; instead it refuses to start, in one line
that says to run `smsgw init`. A database that cannot be reached at start is not a
reason to refuse: the process starts, says so, and `/healthz` reports it until it is back.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy.exc

from smsgw.config import ConfigError
from smsgw.db import READ_ONLY, make_engine

log = logging.getLogger(__name__)


def check_ready(settings: Mapping[str, Any]) -> None:
    """Raise ConfigError (one line) unless every catalog is installed and the schema is current."""
    from smsgw.i18n import check_catalogs

    check_catalogs()
    require_schema(settings)


def require_schema(settings: Mapping[str, Any]) -> None:
    """Raise ConfigError unless the database is at the latest migration."""
    from smsgw.migrate import stored_revisions
    from smsgw.services.health import head_revisions

    engine = make_engine(settings["DATABASE_URL"], connect_timeout=int(settings["DATABASE_CONNECT_TIMEOUT"]))
    try:
        # Read-only: on SQLite this must not wait behind (or block) a writer.
        with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
            current = stored_revisions(conn)
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        log.warning("database not reachable at start (%s); starting anyway, /healthz reports it", reason)
        return
    finally:
        engine.dispose()
    if not current:
        raise ConfigError("the database at DATABASE_URL has no schema: run `smsgw init` first")
    if current != head_revisions():
        raise ConfigError(
            f"the database at DATABASE_URL is at migration {', '.join(sorted(current))}, not the latest: "
            "run `smsgw init` to upgrade it"
        )
