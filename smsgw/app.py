"""The Flask app factory."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import Flask

from smsgw.config import load_settings


def _web_security(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Cookie and CSRF settings for the admin; a key given to create_app wins."""
    production = settings["SMSGW_ENV"] == "production"
    return {
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Browsers drop Secure cookies on plain http, so only production (behind TLS) sets it.
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        # The cookie lives as long as a session may (the database ends it sooner).
        "PERMANENT_SESSION_LIFETIME": dt.timedelta(hours=int(settings["ADMIN_SESSION_HOURS"])),
        # The admin blueprint checks CSRF itself on every write, after the sign-in check,
        # so the AT webhooks (machine-to-machine posts) are never asked for a token.
        "WTF_CSRF_CHECK_DEFAULT": False,
        # Operators on slow links leave forms open for a while; the token still dies
        # with the session.
        "WTF_CSRF_TIME_LIMIT": None,
        # Price files uploaded in the admin are the largest requests (AT posts are tiny).
        "MAX_CONTENT_LENGTH": 25 * 1024 * 1024,
    }


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app; keys in ``config`` override the environment.

    Refuses (ConfigError, one line) a bad setting or a database that is not migrated.
    """
    from smsgw.startup import check_ready

    settings = load_settings(config)
    check_ready(settings)
    app = Flask(__name__, instance_path=str(settings["INSTANCE_DIR"]))
    app.config.from_mapping(settings)
    app.config.update({key: value for key, value in _web_security(settings).items() if key not in settings})
    from smsgw.web import database as web_database

    web_database.init_app(app)
    from smsgw.web.webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)
    from smsgw.web.health import bp as health_bp

    app.register_blueprint(health_bp)
    from smsgw.web import admin

    admin.init_app(app)
    from smsgw.logs import configure_logging

    redactor = configure_logging(settings, "web")
    # Only now, with the root handler in place: Flask then adds no handler of its own.
    app.logger.addFilter(redactor)
    hops = int(settings["SMSGW_PROXY_HOPS"])
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address, scheme and host from the headers our own proxies add:
        # sign-in throttling (per address) and the access log then see the client.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app
