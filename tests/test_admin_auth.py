"""Admin access: sign-in, roles on every route, CSRF, rate limiting, cookies, the users CLI."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from werkzeug.routing import Rule

from smsgw import create_app
from smsgw.cli import main
from smsgw.models import AuditEntry
from smsgw.web.database import get_session
from tests.support.databases import fresh_database
from tests.test_admin_fixtures import PASSWORD, csrf_token, make_user, post

# The shared admin fixtures (users, as_role, operator) come from this plugin module.
pytest_plugins = ["tests.test_admin_fixtures"]

PUBLIC = {"admin.static", "admin.signin", "admin.signin_code"}
# What a viewer may read; every other admin page is for operators or admins.
VIEWER_PAGES = {
    "admin.dashboard",
    "admin.catalog",
    "admin.prices",
    "admin.analytics",
    "admin.analytics_figure",
    "admin.storage_page",
    "admin.storage_plot",
    "admin.account",
}
ADMIN_ONLY = {"admin.users", "admin.user_edit", "admin.audit_log", "admin.throttles", "admin.throttles_clear"}
# Writes any signed-in person may make: about their own session.
OWN_SESSION = {
    "admin.signout", "admin.language", "admin.account_password", "admin.account_signout_others",
    "admin.two_factor_start", "admin.two_factor_confirm", "admin.two_factor_off",
}


def _admin_rules(app) -> list[Rule]:
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin") and rule.endpoint not in PUBLIC]


def _url(rule: Rule) -> str:
    return re.sub(r"<(?:int:)?([a-z_]+)>", "1", rule.rule)


def _calls(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every admin route and method."""
    return [
        (rule.endpoint, method, _url(rule))
        for rule in _admin_rules(app)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]


def test_the_url_map_has_admin_pages_and_actions(app) -> None:
    calls = _calls(app)
    assert len(calls) >= 30
    assert {method for _, method, _ in calls} == {"GET", "POST"}


def test_every_admin_view_declares_who_may_use_it(app) -> None:
    for rule in _admin_rules(app):
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "admin_role", None) in ("viewer", "operator", "admin"), rule.endpoint


def test_nothing_answers_without_sign_in(app) -> None:
    client = app.test_client()
    token = csrf_token(client)  # a valid token: it is the missing sign-in that refuses
    for endpoint, method, url in _calls(app):
        if method == "GET":
            response = client.get(url)
            assert response.status_code == 302, (endpoint, url)
            assert response.location.startswith("/admin/signin"), (endpoint, response.location)
        else:
            response = client.post(url, data={"csrf_token": token})
            assert response.status_code in (401, 403), (endpoint, url, response.status_code)


def test_viewer_reads_only_viewer_pages_and_writes_nothing(app, as_role) -> None:
    client = as_role("viewer")
    token = csrf_token(client, "/admin/")
    for endpoint, method, url in _calls(app):
        if method == "GET":
            # A viewer page for an object that does not exist (id 1, figure "1") may be 404.
            expected = {200, 404} if endpoint in VIEWER_PAGES else {403}
            assert client.get(url).status_code in expected, (endpoint, url)
        elif endpoint not in OWN_SESSION:
            assert client.post(url, data={"csrf_token": token}).status_code == 403, (endpoint, url)


def test_operator_is_refused_admin_pages(app, as_role) -> None:
    client = as_role("operator")
    token = csrf_token(client, "/admin/")
    for endpoint, method, url in _calls(app):
        if endpoint in ADMIN_ONLY:
            response = client.get(url) if method == "GET" else client.post(url, data={"csrf_token": token})
            assert response.status_code == 403, (endpoint, method)
    assert client.get("/admin/people").status_code == 200


def test_admin_opens_every_page(app, as_role, users) -> None:
    client = as_role("admin")
    for endpoint, method, url in _calls(app):
        if method == "GET" and "<" not in url:
            assert client.get(url).status_code in (200, 404), (endpoint, url)
    assert client.get(f"/admin/users/{users['viewer'].id}").status_code == 200


def test_a_write_without_csrf_token_is_refused(operator) -> None:
    response = operator.post("/admin/language", data={"language": "fr"})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert post(operator, "/admin/language", {"language": "fr", "next": "/admin/"}).status_code == 302


def test_every_form_refuses_a_write_without_its_csrf_token(app, as_role, connection) -> None:
    client = as_role("admin")
    audited = connection.scalar(sa.select(sa.func.count()).select_from(AuditEntry))
    writes = [(endpoint, url) for endpoint, method, url in _calls(app) if method == "POST"]
    assert len(writes) >= 15
    for endpoint, url in [*writes, ("admin.signin", "/admin/signin")]:
        for data in ({}, {"csrf_token": "forged"}):
            response = client.post(url, data=data)
            assert response.status_code == 400, (endpoint, data, response.status_code)
    assert connection.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == audited
    assert client.get("/admin/").status_code == 200  # still signed in: signout refused too


def _sign_in(client, email: str, password: str, next_url: str = ""):
    token = csrf_token(client)
    query = f"?next={next_url}" if next_url else ""
    return client.post(f"/admin/signin{query}", data={"email": email, "password": password, "csrf_token": token})


def test_wrong_password_is_refused_and_right_one_signs_in(app, users) -> None:
    client = app.test_client()
    refused = _sign_in(client, "operator@example.org", "not the password")
    assert refused.status_code == 200 and "Wrong email or password" in refused.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302
    signed = _sign_in(client, "Operator@Example.org ", PASSWORD)
    assert signed.status_code == 302 and signed.location == "/admin/"
    assert client.get("/admin/").status_code == 200
    with app.app_context():
        actions = (
            get_session()
            .scalars(sa.select(AuditEntry.action).where(AuditEntry.entity.in_(("signin", "operator_user"))))
            .all()
        )
    assert "signin_failed" in actions and "signin" in actions


def test_inactive_account_cannot_sign_in(app) -> None:
    make_user(app, "gone@example.org", "operator", active=False)
    client = app.test_client()
    assert "Wrong email or password" in _sign_in(client, "gone@example.org", PASSWORD).get_data(as_text=True)


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/at/sms"])
def test_sign_in_never_redirects_off_the_admin(app, users, target) -> None:
    response = _sign_in(app.test_client(), "viewer@example.org", PASSWORD, next_url=target)
    assert response.location == "/admin/"


def test_failed_sign_ins_are_limited_across_workers(app, users, database_url, connection) -> None:
    # A second app is a second web worker: the count lives in the database, not in memory.
    other = create_app({"TESTING": True, "DATABASE_URL": database_url, "WEBHOOK_TOKEN": ""})
    other.extensions["smsgw.db"].bind(connection, join_transaction_mode="create_savepoint")
    first, second = app.test_client(), other.test_client()
    for attempt in range(5):
        client = first if attempt % 2 else second
        assert _sign_in(client, "admin@example.org", f"guess {attempt}").status_code == 200
    limited = _sign_in(first, "admin@example.org", PASSWORD)
    assert limited.status_code == 429
    assert "Too many failed sign-ins" in limited.get_data(as_text=True)
    assert _sign_in(second, "admin@example.org", PASSWORD).status_code == 429
    # Another account is not locked by attempts on this one.
    assert _sign_in(second, "viewer@example.org", PASSWORD).status_code == 302
    other.extensions["smsgw.db"].dispose()


def test_session_cookie_is_http_only_and_lax(app, users) -> None:
    client = app.test_client()
    response = _sign_in(client, "viewer@example.org", PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_production_cookies_are_secure(database_url) -> None:
    app = create_app(
        {"DATABASE_URL": database_url, "SMSGW_ENV": "production", "SECRET_KEY": "s" * 32, "WEBHOOK_TOKEN": "t" * 16}
    )
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    app.extensions["smsgw.db"].dispose()


def test_admin_pages_load_nothing_from_elsewhere(operator) -> None:
    response = operator.get("/admin/")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"
    assert not re.search(r'(src|href)="(https?:)?//', response.get_data(as_text=True))


def test_webhooks_need_no_csrf_token(client) -> None:
    body = {"sessionId": "csrf-1", "phoneNumber": "+254700000001", "serviceCode": "*384#", "text": ""}
    assert client.post("/at/ussd", data=body).status_code == 200


@pytest.fixture()
def cli_database(tmp_path, monkeypatch) -> Iterator[str]:
    """A fresh database for the CLI, which commits for real."""
    with fresh_database(tmp_path, "sqlite", seed=False) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url


def test_users_create_reads_the_password_from_stdin(cli_database) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["users", "create", "--role", "admin", "Boss@Example.org"], input="a long enough secret\n"
    )
    assert result.exit_code == 0, result.output
    assert "admin boss@example.org created" in result.output
    again = runner.invoke(
        main, ["users", "create", "--role", "viewer", "boss@example.org"], input="another secret 123\n"
    )
    assert again.exit_code != 0 and "already has an account" in again.output
    short = runner.invoke(main, ["users", "create", "--role", "viewer", "x@example.org"], input="short\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    listing = runner.invoke(main, ["users", "list"])
    assert "boss@example.org" in listing.output and "x@example.org" not in listing.output
    app = create_app({"TESTING": True, "DATABASE_URL": cli_database})
    client = app.test_client()
    assert _sign_in(client, "boss@example.org", "a long enough secret").status_code == 302
    app.extensions["smsgw.db"].dispose()


def test_the_cli_follows_the_password_policy_and_ends_sessions(cli_database) -> None:
    runner = CliRunner()
    weak = runner.invoke(main, ["users", "create", "--role", "admin", "boss@example.org"], input="password123\n")
    assert weak.exit_code == 1 and "too easy to guess" in weak.output
    assert (
        runner.invoke(
            main, ["users", "create", "--role", "admin", "boss@example.org"], input="a long enough secret\n"
        ).exit_code
        == 0
    )
    app = create_app({"TESTING": True, "DATABASE_URL": cli_database})
    browser = app.test_client()
    assert _sign_in(browser, "boss@example.org", "a long enough secret").status_code == 302
    assert browser.get("/admin/users").status_code == 200
    changed = runner.invoke(main, ["users", "set-password", "boss@example.org"], input="pale river lantern stone\n")
    assert changed.exit_code == 0 and "1 open session(s) ended" in changed.output
    assert browser.get("/admin/users").status_code == 302
    assert _sign_in(browser, "boss@example.org", "pale river lantern stone").status_code == 302
    signed_out = runner.invoke(main, ["users", "sign-out", "boss@example.org"])
    assert signed_out.exit_code == 0 and "1 open session(s)" in signed_out.output
    assert browser.get("/admin/users").status_code == 302
    for n in range(5):
        _sign_in(browser, "boss@example.org", f"guess {n}")
    assert _sign_in(browser, "boss@example.org", "pale river lantern stone").status_code == 429
    cleared = runner.invoke(main, ["users", "clear-throttles"])
    assert cleared.exit_code == 0 and "2 sign-in throttle(s) cleared" in cleared.output
    assert _sign_in(browser, "boss@example.org", "pale river lantern stone").status_code == 302
    app.extensions["smsgw.db"].dispose()


def test_users_create_takes_no_password_on_the_command_line() -> None:
    command = main.commands["users"].commands["create"]
    assert not any("password" in (param.name or "") for param in command.params)
