"""`GET /healthz`: 200 when the service works, 503 naming what does not (for monitors).

No sign-in and no token: a load balancer or uptime monitor calls it. It shows no
personal data, only the one-line facts of ``smsgw.services.health``.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify

from smsgw.db import utcnow
from smsgw.services import health
from smsgw.web.database import close_session, get_session

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """All checks as JSON: ``{"ok": bool, "checks": {name: {"ok", "detail"}}}``."""
    try:
        checks = health.check(get_session(), utcnow(), current_app.config)
    except Exception as exc:  # the checks never raise; opening the session might
        log.warning("healthz: no database session: %s", exc, exc_info=True)
        checks = [health.Check("database", False, f"did not answer ({type(exc).__name__})")] + [
            health.Check(name, False, "not checked: no database") for name in health.NAMES[1:]
        ]
    finally:
        # Release the connection now, not at teardown: a monitor polls this often.
        try:
            close_session()
        except Exception:  # closing a session on a dead connection may fail too
            log.debug("healthz: closing the session failed", exc_info=True)
    ok = all(item.ok for item in checks)
    response = jsonify({"ok": ok, "checks": {item.name: {"ok": item.ok, "detail": item.detail} for item in checks}})
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if ok else 503
