"""Operators' sessions end for real; sign-in throttles are shared, doubling and fair;
passwords follow a policy; the authenticator app's code is a second factor.

Issue 20, items 1 to 3. Sessions and throttles live in the database, so these tests
sign in through the real form, copy cookies between clients as a thief would, move the
stored times instead of waiting, and run forty guesses at once on a real server.
"""
from __future__ import annotations

import datetime as dt
import re
import threading

import pyotp
import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from smsgw import create_app
from smsgw.models import AdminSession, AuditEntry, OperatorUser, SigninThrottle
from smsgw.services import signin_throttle
from smsgw.services.passwords import password_problem
from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import AppServer
from tests.test_admin_fixtures import PASSWORD, csrf_token, make_user, post

pytest_plugins = ["tests.test_admin_fixtures"]


def _sign_in(client: FlaskClient, email: str, password: str, address: str = "127.0.0.1"):
    token = csrf_token(client)
    return client.post("/admin/signin", data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def _copy(app: Flask, client: FlaskClient) -> FlaskClient:
    """A second browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief.set_cookie("session", cookie.value)
    return thief


def _signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    assert _sign_in(client, email, PASSWORD).status_code == 302
    return client


def _age(connection: sa.Connection, email: str, **shift: dt.timedelta) -> None:
    """Move the stored times of ``email``'s sessions into the past."""
    user_id = connection.scalar(sa.select(OperatorUser.id).where(OperatorUser.email == email))
    rows = connection.execute(sa.select(AdminSession.id, *(getattr(AdminSession, c) for c in shift))
                              .where(AdminSession.user_id == user_id)).all()
    for row in rows:
        connection.execute(sa.update(AdminSession).where(AdminSession.id == row.id)
                           .values({column: getattr(row, column) - delta for column, delta in shift.items()}))


# 1. Sessions that end.

def test_sign_out_ends_every_copy_of_the_session(app, users) -> None:
    browser = _signed_in(app, "admin@example.org")
    thief = _copy(app, browser)
    assert thief.get("/admin/users").status_code == 200
    assert post(browser, "/admin/signout").status_code == 302
    assert thief.get("/admin/users").status_code == 302
    assert browser.get("/admin/users").status_code == 302


def test_a_new_password_set_by_an_admin_ends_the_accounts_sessions(app, users) -> None:
    victim = _signed_in(app, "operator@example.org")
    admin = _signed_in(app, "admin@example.org")
    response = post(
        admin,
        f"/admin/users/{users['operator'].id}",
        {"role": "operator", "active": "y", "password": "pale river lantern stone"},
        page=f"/admin/users/{users['operator'].id}",
    )
    assert response.status_code == 302
    assert victim.get("/admin/").status_code == 302
    assert admin.get("/admin/").status_code == 200
    assert _sign_in(app.test_client(), "operator@example.org", "pale river lantern stone").status_code == 302


def test_changing_ones_own_password_keeps_this_browser_and_ends_the_others(app, users) -> None:
    here, elsewhere = _signed_in(app, "viewer@example.org"), _signed_in(app, "viewer@example.org")
    response = post(
        here,
        "/admin/account/password",
        {"current": PASSWORD, "password": "quiet mango harbour drum"},
        page="/admin/account",
    )
    assert response.status_code == 302
    assert here.get("/admin/account").status_code == 200
    assert elsewhere.get("/admin/account").status_code == 302
    refused = post(
        here,
        "/admin/account/password",
        {"current": "not it", "password": "another long phrase here"},
        page="/admin/account",
    )
    assert refused.status_code == 400 and "not your current password" in refused.get_data(as_text=True)


def test_an_admins_sign_out_everywhere_ends_every_session_of_the_account(app, users, connection) -> None:
    phone, laptop = _signed_in(app, "operator@example.org"), _signed_in(app, "operator@example.org")
    admin = _signed_in(app, "admin@example.org")
    url = f"/admin/users/{users['operator'].id}"
    assert (
        post(admin, url, {"role": "operator", "active": "y", "sign_out_everywhere": "y"}, page=url).status_code == 302
    )
    assert phone.get("/admin/").status_code == 302 and laptop.get("/admin/").status_code == 302
    reasons = connection.scalars(
        sa.select(AdminSession.end_reason).where(AdminSession.user_id == users["operator"].id)
    ).all()
    assert reasons == ["everywhere", "everywhere"]
    after = connection.scalars(
        sa.select(AuditEntry.after)
        .where(AuditEntry.entity == "operator_user", AuditEntry.action == "update")
        .order_by(AuditEntry.id)
    ).all()[-1]
    assert after == {"sessions_ended": 2}


def test_switching_an_account_off_ends_its_sessions(app, users) -> None:
    victim = _signed_in(app, "operator@example.org")
    admin = _signed_in(app, "admin@example.org")
    url = f"/admin/users/{users['operator'].id}"
    assert post(admin, url, {"role": "operator"}, page=url).status_code == 302
    assert victim.get("/admin/").status_code == 302


def test_a_session_unused_past_the_idle_limit_ends(app, users, connection) -> None:
    assert app.config["ADMIN_IDLE_MINUTES"] == 30
    browser = _signed_in(app, "viewer@example.org")
    _age(connection, "viewer@example.org", last_seen_at=dt.timedelta(minutes=29), created_at=dt.timedelta(minutes=29))
    # Used within the limit: the idle time starts again from now.
    assert browser.get("/admin/").status_code == 200
    _age(connection, "viewer@example.org", last_seen_at=dt.timedelta(minutes=29))
    assert browser.get("/admin/").status_code == 200
    _age(connection, "viewer@example.org", last_seen_at=dt.timedelta(minutes=31))
    assert browser.get("/admin/").status_code == 302


def test_a_session_ends_at_the_absolute_limit_however_busy(app, users, connection) -> None:
    assert app.config["ADMIN_SESSION_HOURS"] == 12
    browser = _signed_in(app, "viewer@example.org")
    _age(connection, "viewer@example.org", created_at=dt.timedelta(hours=11, minutes=59))
    assert browser.get("/admin/").status_code == 200
    _age(connection, "viewer@example.org", created_at=dt.timedelta(minutes=2))
    assert browser.get("/admin/").status_code == 302


def test_the_limits_are_settings(database_url, monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_IDLE_MINUTES", "5")
    monkeypatch.setenv("ADMIN_SESSION_HOURS", "2")
    app = create_app({"TESTING": True, "DATABASE_URL": database_url})
    assert (app.config["ADMIN_IDLE_MINUTES"], app.config["ADMIN_SESSION_HOURS"]) == (5, 2)
    assert app.config["PERMANENT_SESSION_LIFETIME"] == dt.timedelta(hours=2)
    app.extensions["smsgw.db"].dispose()


def test_the_cookie_holds_a_token_the_database_keeps_only_hashed(app, users, connection) -> None:
    browser = _signed_in(app, "viewer@example.org")
    with browser.session_transaction() as session:
        token = session["_user_id"]
    stored = connection.scalars(sa.select(AdminSession.token_hash)).all()
    assert len(token) >= 40 and token not in stored and len(stored) == 1
    assert str(users["viewer"].id) != token


def test_the_account_page_lists_this_browsers_session(app, users) -> None:
    browser = _signed_in(app, "viewer@example.org")
    _signed_in(app, "viewer@example.org")
    page = browser.get("/admin/account").get_data(as_text=True)
    assert page.count("<tr><td>") == 2 and "this browser" in page
    assert post(browser, "/admin/account/signout-others", page="/admin/account").status_code == 302
    assert browser.get("/admin/account").get_data(as_text=True).count("<tr><td>") == 1


# 2. Throttling: shared, doubling, fair.

def _throttle(connection: sa.Connection, scope: str) -> SigninThrottle:
    return connection.execute(sa.select(SigninThrottle).where(SigninThrottle.scope == scope)).one()


def test_each_failure_past_the_free_ones_doubles_the_wait(app, users, connection) -> None:
    client = app.test_client()
    for n in range(signin_throttle.FREE_FAILURES["account"]):
        assert _sign_in(client, "admin@example.org", f"guess {n}").status_code == 200
    waits = []
    for _ in range(3):
        refused = _sign_in(client, "admin@example.org", PASSWORD)
        assert refused.status_code == 429
        seconds = re.search(r"Wait (?:(\d+) min )?(\d+) s", refused.get_data(as_text=True))
        assert seconds, refused.get_data(as_text=True)
        waits.append(int(seconds.group(1) or 0) * 60 + int(seconds.group(2)))
        # The wait passes (moved in the database, not slept), and one more guess fails.
        connection.execute(sa.update(SigninThrottle).values(blocked_until=SigninThrottle.last_failure_at))
        assert _sign_in(client, "admin@example.org", "one more guess").status_code == 200
    assert [29 <= w <= 30 for w in waits] == [True, False, False]
    assert 59 <= waits[1] <= 60 and 119 <= waits[2] <= 120
    # Refused tries are not counted: only the guesses are.
    assert _throttle(connection, "account").failures == signin_throttle.FREE_FAILURES["account"] + 3


def test_the_wait_never_grows_past_fifteen_minutes() -> None:
    assert signin_throttle.wait_after("account", 4) is None
    assert signin_throttle.wait_after("account", 5) == dt.timedelta(seconds=30)
    assert signin_throttle.wait_after("account", 6) == dt.timedelta(seconds=60)
    assert signin_throttle.wait_after("account", 500) == dt.timedelta(minutes=15)
    assert signin_throttle.wait_after("address", 19) is None


def test_the_right_password_gives_the_charge_back(app, users, connection) -> None:
    client = app.test_client()
    for n in range(3):
        _sign_in(client, "admin@example.org", f"guess {n}")
    assert _sign_in(client, "admin@example.org", PASSWORD).status_code == 302
    assert (
        connection.scalar(
            sa.select(sa.func.count()).select_from(SigninThrottle).where(SigninThrottle.scope == "account")
        )
        == 0
    )
    assert _throttle(connection, "address").failures == 3


def test_an_admin_sees_and_clears_throttles(app, users, connection) -> None:
    guesser = app.test_client()
    for n in range(signin_throttle.FREE_FAILURES["account"]):
        _sign_in(guesser, "operator@example.org", f"guess {n}", address="203.0.113.9")
    admin = _signed_in(app, "admin@example.org")
    page = admin.get("/admin/throttles").get_data(as_text=True)
    assert "operator@example.org" in page and "203.0.113.9" in page
    assert "guess" not in page
    assert _sign_in(guesser, "operator@example.org", PASSWORD, address="203.0.113.9").status_code == 429
    key = _throttle(connection, "account").key
    assert post(admin, "/admin/throttles/clear", {"key": key}, page="/admin/throttles").status_code == 302
    assert _sign_in(guesser, "operator@example.org", PASSWORD, address="203.0.113.9").status_code == 302
    assert post(admin, "/admin/throttles/clear", page="/admin/throttles").status_code == 302
    assert connection.scalar(sa.select(sa.func.count()).select_from(SigninThrottle)) == 0
    assert _signed_in(app, "viewer@example.org").get("/admin/throttles").status_code == 403


def test_an_unknown_account_is_throttled_but_what_was_typed_is_not_kept(app, connection) -> None:
    client = app.test_client()
    for _ in range(signin_throttle.FREE_FAILURES["account"]):
        _sign_in(client, "my secret password", "x")
    assert _sign_in(client, "my secret password", "x").status_code == 429
    row = _throttle(connection, "account")
    assert row.account == "" and "secret" not in row.key


@pytest.fixture(params=BACKENDS)
def served(request, tmp_path):
    """The app on a real threaded server over its own database (not the test's transaction)."""
    with fresh_database(tmp_path, request.param, seed=False) as url:
        app = create_app({"TESTING": True, "DATABASE_URL": url, "WEBHOOK_TOKEN": ""})
        make_user(app, "admin@example.org", "admin")
        server = AppServer(app).start()
        try:
            yield server, url
        finally:
            server.close()
            app.extensions["smsgw.db"].dispose()


def test_forty_simultaneous_guesses_check_no_more_passwords_than_the_limit(served) -> None:
    server, url = served
    sessions = []
    for _ in range(40):
        browser = requests.Session()
        page = browser.get(f"{server.url}/admin/signin", timeout=30).text
        sessions.append((browser, re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)))
    start, statuses = threading.Barrier(40), []

    def guess(n: int) -> None:
        browser, token = sessions[n]
        start.wait()
        answer = browser.post(
            f"{server.url}/admin/signin",
            data={"email": "admin@example.org", "password": f"guess {n}", "csrf_token": token},
            timeout=60,
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    limit = signin_throttle.FREE_FAILURES["account"]
    assert sorted(statuses) == [200] * limit + [429] * (40 - limit)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        checked = conn.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "signin_failed")
        )
    engine.dispose()
    assert checked == limit
    for browser, _ in sessions:
        browser.close()


# 3. Passwords and the second factor.

@pytest.mark.parametrize(
    "password",
    ["aaaaaaaaaa", "password123", "qwertyuiop", "iloveyou12", "1234567890", "Password1!", "admin12345", "abcdefghij"],
)
def test_common_and_patterned_passwords_are_refused(password) -> None:
    assert password_problem(password) == "guessable"


@pytest.mark.parametrize("password", ["correct horse battery", "pale river lantern stone", "Mvua-ya-jana 7 mbuzi"])
def test_long_unrelated_words_are_accepted(password) -> None:
    assert password_problem(password, "amina@example.org") is None


def test_short_passwords_are_refused_and_the_email_counts_as_known() -> None:
    assert password_problem("short") == "short"
    assert password_problem("wanjikukamau", "wanjiku.kamau@example.org") == "guessable"
    assert password_problem("wanjikukamau", "other@example.org") is None


def test_the_admin_refuses_a_weak_password_with_the_reason(app, users, connection) -> None:
    admin = _signed_in(app, "admin@example.org")
    response = post(
        admin,
        "/admin/users",
        {"email": "new@example.org", "role": "viewer", "language": "en", "password": "aaaaaaaaaa"},
        page="/admin/users",
    )
    assert response.status_code == 200 and "Too easy to guess" in response.get_data(as_text=True)
    assert connection.scalar(sa.select(OperatorUser.id).where(OperatorUser.email == "new@example.org")) is None
    own = post(
        admin, "/admin/account/password", {"current": PASSWORD, "password": "password123"}, page="/admin/account"
    )
    assert own.status_code == 400 and "Too easy to guess" in own.get_data(as_text=True)


def _turn_on_two_factor(client: FlaskClient) -> str:
    assert post(client, "/admin/account/two-factor/start", page="/admin/account").status_code == 302
    page = client.get("/admin/account").get_data(as_text=True)
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page).group(1)
    wrong = post(client, "/admin/account/two-factor/confirm", {"code": "000000"}, page="/admin/account")
    assert wrong.status_code == 400
    assert (
        post(
            client, "/admin/account/two-factor/confirm", {"code": pyotp.TOTP(secret).now()}, page="/admin/account"
        ).status_code
        == 302
    )
    return secret


def _next_code(secret: str) -> str:
    """The code of the next 30 s: a phone whose clock runs a little fast shows it."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(dt.datetime.now(dt.UTC)) + 1)


def test_with_two_factor_the_password_alone_does_not_sign_in(app, users, connection) -> None:
    secret = _turn_on_two_factor(_signed_in(app, "operator@example.org"))
    browser = app.test_client()
    step_one = _sign_in(browser, "operator@example.org", PASSWORD)
    assert step_one.status_code == 302 and step_one.location == "/admin/signin/code"
    assert browser.get("/admin/").status_code == 302
    token = csrf_token(browser, "/admin/signin/code")
    wrong = browser.post("/admin/signin/code", data={"code": "123456", "csrf_token": token})
    assert wrong.status_code == 200 and "Wrong or already used code" in wrong.get_data(as_text=True)
    # A generated code (of the next 30 s: clocks drift) signs in; the same code again does not.
    code = _next_code(secret)
    assert browser.post("/admin/signin/code", data={"code": code, "csrf_token": token}).status_code == 302
    assert browser.get("/admin/").status_code == 200
    replay = app.test_client()
    _sign_in(replay, "operator@example.org", PASSWORD)
    again = replay.post(
        "/admin/signin/code", data={"code": code, "csrf_token": csrf_token(replay, "/admin/signin/code")}
    )
    assert again.status_code == 200
    assert (
        connection.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "signin_code_failed")
        )
        == 2
    )


def test_code_guesses_are_throttled_and_a_right_password_does_not_reset_them(app, users, connection) -> None:
    _turn_on_two_factor(_signed_in(app, "operator@example.org"))
    browser = app.test_client()
    statuses = []
    for _ in range(4):
        assert _sign_in(browser, "operator@example.org", PASSWORD).status_code in (302, 429)
        statuses.append(
            browser.post(
                "/admin/signin/code", data={"code": "000001", "csrf_token": csrf_token(browser, "/admin/signin/code")}
            ).status_code
        )
    # Each password and each code count; the password being right gives nothing back.
    assert 429 in statuses


def test_an_admin_removes_a_lost_second_factor(app, users, connection) -> None:
    _turn_on_two_factor(_signed_in(app, "operator@example.org"))
    admin = _signed_in(app, "admin@example.org")
    url = f"/admin/users/{users['operator'].id}"
    assert post(admin, url, {"role": "operator", "active": "y", "remove_two_factor": "y"}, page=url).status_code == 302
    assert connection.scalar(sa.select(OperatorUser.totp_secret).where(OperatorUser.id == users["operator"].id)) is None
    assert _sign_in(app.test_client(), "operator@example.org", PASSWORD).location == "/admin/"


def test_turning_two_factor_off_needs_a_current_code(app, users, connection) -> None:
    client = _signed_in(app, "viewer@example.org")
    secret = _turn_on_two_factor(client)
    assert post(client, "/admin/account/two-factor/off", {"code": "999999"}, page="/admin/account").status_code == 400
    assert (
        post(client, "/admin/account/two-factor/off", {"code": _next_code(secret)}, page="/admin/account").status_code
        == 302
    )
    assert (
        connection.scalar(sa.select(OperatorUser.totp_secret).where(OperatorUser.email == "viewer@example.org")) is None
    )
