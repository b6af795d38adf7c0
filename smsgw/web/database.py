"""One database session per request, closed at teardown (the flaskr ``db.py`` shape)."""

from __future__ import annotations

import sqlalchemy.orm as so
from flask import Flask, current_app, g, has_request_context, request

from smsgw.db import Database


def init_app(app: Flask) -> None:
    """Create the app's Database and close the request's session after each request."""
    app.extensions["smsgw.db"] = Database.from_settings(app.config, web=True)
    app.teardown_appcontext(close_session)


def get_db(app: Flask | None = None) -> Database:
    """The app's Database (engine and session factory)."""
    return (app or current_app).extensions["smsgw.db"]


def get_session() -> so.Session:
    """The session of the current request, created on first use.

    A GET only reads: its session never takes SQLite's write lock, so an operator's
    page (the analytics above all) cannot make a farmer's USSD hop wait.
    """
    if "db_session" not in g:
        database = get_db()
        reading = has_request_context() and request.method in ("GET", "HEAD")
        g.db_session = (database.read_sessionmaker if reading else database.sessionmaker)()
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back whatever the request left uncommitted and release the connection."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
