"""Fixtures and helpers shared by the admin tests (this module holds no tests)."""
from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from smsgw.models import OperatorUser
from smsgw.services.operator_sessions import start_session
from smsgw.web.database import get_session

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def make_user(app: Flask, email: str, role: str, password: str = PASSWORD, **values: object) -> OperatorUser:
    """An operator account committed in the test's transaction (a cheap hash: tests only)."""
    with app.app_context():
        session = get_session()
        row = OperatorUser(
            email=email,
            role=role,
            password_hash=generate_password_hash(password, method="pbkdf2:sha256:1000"),
            **values,
        )
        session.add(row)
        session.commit()
        return row


def sign_in(client: FlaskClient, user: OperatorUser) -> FlaskClient:
    """Open a server-side session for ``user`` and put its token in the client's cookie,
    as a sign-in does."""
    app = client.application
    with app.app_context():
        db = get_session()
        token = start_session(db, db.get(OperatorUser, user.id), "127.0.0.1", "test client")
        db.commit()
    with client.session_transaction() as session:
        session["_user_id"] = token
        session["_fresh"] = True
    return client


def csrf_token(client: FlaskClient, page: str = "/admin/signin") -> str:
    """The session's CSRF token, read from a page's form."""
    found = TOKEN.search(client.get(page).get_data(as_text=True))
    assert found, f"no CSRF token on {page}"
    return found.group(1)


@pytest.fixture()
def users(app: Flask) -> dict[str, OperatorUser]:
    """One account per role."""
    return {role: make_user(app, f"{role}@example.org", role) for role in ("admin", "operator", "viewer")}


@pytest.fixture()
def as_role(app: Flask, users: dict[str, OperatorUser]) -> Callable[[str], FlaskClient]:
    """A new client signed in with the given role."""
    return lambda role: sign_in(app.test_client(), users[role])


@pytest.fixture()
def operator(as_role: Callable[[str], FlaskClient]) -> FlaskClient:
    """A client signed in as an operator."""
    return as_role("operator")


def post(client: FlaskClient, url: str, data: dict | None = None, page: str = "/admin/", **kwargs: object):
    """POST ``data`` with the session's CSRF token."""
    return client.post(url, data={"csrf_token": csrf_token(client, page), **(data or {})}, **kwargs)
