"""The Flask app factory."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from smsgw.config import load_settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app; keys in ``config`` override the environment."""
    settings = load_settings(config)
    app = Flask(__name__, instance_path=str(settings["INSTANCE_DIR"]))
    app.config.from_mapping(settings)
    from smsgw.web import database as web_database

    web_database.init_app(app)
    from smsgw.web.webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)
    return app
