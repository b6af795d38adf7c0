"""Behind a reverse proxy: SMSGW_PROXY_HOPS lets sign-in throttling see the client.

Every request through a proxy comes from the proxy's address. With the hops set, the
client address is read from X-Forwarded-For (from the right, as many entries as there
are trusted proxies), so one client's failures lock that client out and nobody else;
with no hops the header is ignored, so a client cannot write its way past the limit.
Guesses at one account from many addresses never refuse its right password from a new
one (nothing counts per account across addresses).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix

from smsgw import create_app
from smsgw.config import ConfigError, load_settings
from smsgw.models import AuditEntry
from smsgw.services import signin_throttle
from tests.test_admin_fixtures import PASSWORD, csrf_token, make_user

PROXY = "10.0.0.2"  # the reverse proxy, the peer of every request
ATTACKER, OPERATOR = "203.0.113.66", "198.51.100.7"
# A few failures stand for the 20 of production: the rule, not the number, is tested.
ADDRESS_LIMIT = 4
ACCOUNT_LIMIT = signin_throttle.FREE_FAILURES["account"]


@pytest.fixture()
def make_app(database_url: str, connection: sa.Connection) -> Iterator[Callable[[int], Flask]]:
    """Apps with a given SMSGW_PROXY_HOPS, on the test's transaction, an operator account each."""
    apps: list[Flask] = []

    def build(hops: int) -> Flask:
        app = create_app({"TESTING": True, "DATABASE_URL": database_url, "WEBHOOK_TOKEN": "", "SMSGW_PROXY_HOPS": hops})
        app.extensions["smsgw.db"].bind(connection, join_transaction_mode="create_savepoint")
        if not apps:
            make_user(app, "operator@example.org", "operator")
            make_user(app, "admin@example.org", "admin")
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["smsgw.db"].dispose()


@pytest.fixture(autouse=True)
def small_address_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(signin_throttle.FREE_FAILURES, "address", ADDRESS_LIMIT)


def _browser(app: Flask) -> FlaskClient:
    """A client whose requests all arrive from the proxy."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = PROXY
    return client


def _sign_in(client: FlaskClient, email: str, password: str, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    token = csrf_token(client)
    response = client.post(
        "/admin/signin", data={"email": email, "password": password, "csrf_token": token}, headers=headers
    )
    return response.status_code


def _actors(connection: sa.Connection) -> set[str]:
    return set(connection.scalars(sa.select(AuditEntry.actor).where(AuditEntry.action == "signin_failed")))


def test_one_clients_failures_do_not_lock_out_another_behind_the_same_proxy(make_app, connection) -> None:
    app = make_app(1)
    attacker, operator = _browser(app), _browser(app)
    for n in range(ADDRESS_LIMIT):
        # Whatever the client writes into the header, the proxy appends the real address.
        assert _sign_in(attacker, f"guess{n}@example.org", "wrong", f"192.0.2.{n}, {ATTACKER}") == 200
    assert _sign_in(attacker, "operator@example.org", PASSWORD, f"192.0.2.99, {ATTACKER}") == 429
    assert _actors(connection) == {f"ip:{ATTACKER}"}
    assert _sign_in(operator, "operator@example.org", PASSWORD, OPERATOR) == 302


def test_without_hops_the_header_is_ignored_and_cannot_dodge_the_limit(make_app, connection) -> None:
    app = make_app(0)
    attacker = _browser(app)
    for n in range(ADDRESS_LIMIT):
        assert _sign_in(attacker, f"guess{n}@example.org", "wrong", f"192.0.2.{n}") == 200
    assert _sign_in(attacker, "operator@example.org", PASSWORD, "192.0.2.200") == 429
    assert _actors(connection) == {f"ip:{PROXY}"}


def test_guesses_from_many_addresses_never_refuse_the_right_password_from_a_new_one(make_app) -> None:
    app = make_app(1)
    for n in range(3 * ACCOUNT_LIMIT):
        assert _sign_in(_browser(app), "admin@example.org", f"guess {n}", f"198.51.100.{n + 10}") == 200
    assert _sign_in(_browser(app), "admin@example.org", PASSWORD, "198.51.100.99") == 302


def test_the_account_limit_holds_for_its_address_only(make_app, monkeypatch) -> None:
    monkeypatch.setitem(signin_throttle.FREE_FAILURES, "address", 3 * ACCOUNT_LIMIT)
    app = make_app(1)
    for n in range(ACCOUNT_LIMIT):
        assert _sign_in(_browser(app), "admin@example.org", f"guess {n}", ATTACKER) == 200
    assert _sign_in(_browser(app), "admin@example.org", PASSWORD, ATTACKER) == 429
    # Another account signs in from the same address, and this one from another address.
    assert _sign_in(_browser(app), "operator@example.org", PASSWORD, ATTACKER) == 302
    assert _sign_in(_browser(app), "admin@example.org", PASSWORD, OPERATOR) == 302


def test_hops_apply_proxy_fix_for_address_scheme_and_host(make_app) -> None:
    assert not isinstance(make_app(0).wsgi_app, ProxyFix)
    fixed = make_app(2).wsgi_app
    assert isinstance(fixed, ProxyFix) and (fixed.x_for, fixed.x_proto, fixed.x_host) == (2, 2, 2)


def test_the_setting_is_read_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("SMSGW_PROXY_HOPS", raising=False)
    assert load_settings()["SMSGW_PROXY_HOPS"] == 0
    monkeypatch.setenv("SMSGW_PROXY_HOPS", "1")
    assert load_settings()["SMSGW_PROXY_HOPS"] == 1


@pytest.mark.parametrize("value", ["-1", "one", "1.5"])
def test_a_wrong_number_of_hops_is_refused(monkeypatch, value) -> None:
    monkeypatch.setenv("SMSGW_PROXY_HOPS", value)
    with pytest.raises(ConfigError, match="SMSGW_PROXY_HOPS"):
        load_settings()
