"""Webhook authentication and what reaches the logs.

With WEBHOOK_TOKEN set, a callback without it, or with any other value, gets 403 and
changes nothing; the comparison is constant-time. The token never appears in a log
line (Werkzeug's access lines carry the URL, ``?token=`` included), and phone numbers
are masked, in the app's lines and in the tracebacks Flask logs.
"""
from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsgw import create_app
from smsgw.db import Base
from smsgw.web import webhooks
from smsgw.web.logging import RedactingFilter, redact
from tests.support.databases import fresh_database
from tests.support.server import AppServer

TOKEN = "Tk-8f3a9c1e-secret"
FARMER = "+254700000001"
CALLBACKS = {
    "/at/ussd": {"sessionId": "auth-1", "phoneNumber": FARMER, "serviceCode": "*384#", "text": "4*1*1*10*4300*1*1"},
    "/at/ussd/events": {"sessionId": "auth-1", "phoneNumber": FARMER, "status": "Success", "durationInMillis": "100"},
    "/at/sms": {"from": FARMER, "to": "22384", "text": "STOP", "id": "auth-sms-1"},
    "/at/delivery": {"id": "ATXid_auth", "status": "Failed", "phoneNumber": FARMER},
}
WRONG = [
    "",
    "wrong",
    TOKEN[:-1],
    TOKEN + "x",
    TOKEN.upper(),
    " " + TOKEN,
    "Tk-8f3a9c1e-secrét",
    "%00",
    TOKEN.replace("-", "%2E"),
]


@pytest.fixture()
def guarded(app: Flask) -> Flask:
    """The test app with a webhook token."""
    app.config["WEBHOOK_TOKEN"] = TOKEN
    return app


def _fingerprint(connection: sa.Connection) -> tuple:
    """Row counts of every table and the contact states a callback could change."""
    counts = tuple(connection.scalar(sa.select(sa.func.count()).select_from(t)) for t in Base.metadata.sorted_tables)
    return counts, tuple(connection.execute(sa.text("SELECT id, consent FROM contact ORDER BY id")).all())


@pytest.mark.parametrize("path", list(CALLBACKS))
@pytest.mark.parametrize("token", WRONG)
def test_a_callback_without_the_token_is_refused_and_changes_nothing(guarded, connection, path, token) -> None:
    client = guarded.test_client()
    before = _fingerprint(connection)
    query = "" if token == "" else f"?token={token}"
    assert client.post(path + query, data=CALLBACKS[path]).status_code == 403
    # Not in the form either: AT sends it in the URL we registered, nowhere else.
    assert client.post(path, data={**CALLBACKS[path], "token": TOKEN}).status_code == 403
    assert _fingerprint(connection) == before


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(max_size=40).filter(lambda value: value != TOKEN))
def test_any_other_token_is_refused(guarded, connection, token) -> None:
    before = _fingerprint(connection)
    response = guarded.test_client().post("/at/sms", query_string={"token": token}, data=CALLBACKS["/at/sms"])
    assert response.status_code == 403
    assert _fingerprint(connection) == before


def test_the_right_token_is_let_in_and_compared_in_constant_time(guarded, connection, monkeypatch) -> None:
    calls = []
    compare = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        calls.append((given, expected))
        return compare(given, expected)

    monkeypatch.setattr(webhooks.hmac, "compare_digest", spy)
    client = guarded.test_client()
    for path, fields in CALLBACKS.items():
        assert client.post(f"{path}?token={TOKEN}", data=fields).status_code == 200, path
    assert calls and all(expected == TOKEN.encode() for _, expected in calls)
    consent = connection.scalar(sa.text("SELECT consent FROM contact WHERE phone = :p"), {"p": FARMER})
    assert consent == "withdrawn"  # the STOP went through


@pytest.fixture()
def served(tmp_path) -> Iterator[AppServer]:
    """The app with a token on a real server (Werkzeug writes its access lines), own database."""
    with fresh_database(tmp_path, "sqlite") as url:
        app = create_app({"DATABASE_URL": url, "WEBHOOK_TOKEN": TOKEN})
        try:
            with AppServer(app) as server:
                yield server
        finally:
            app.extensions["smsgw.db"].dispose()


def test_the_token_and_phone_numbers_never_reach_the_logs(served, caplog, monkeypatch) -> None:
    encoded_phone = "%2B254700000002"
    # Earlier tests may have reconfigured logging (dictConfig disables existing loggers):
    # make sure Werkzeug's access lines reach the capture, so their redaction is checked.
    werkzeug_log = logging.getLogger("werkzeug")
    monkeypatch.setattr(werkzeug_log, "disabled", False)
    monkeypatch.setattr(werkzeug_log, "propagate", True)
    caplog.set_level(logging.INFO, logger="werkzeug")
    with caplog.at_level(logging.INFO):
        for path, fields in CALLBACKS.items():
            response = requests.post(
                f"{served.url}{path}?token={TOKEN}&phoneNumber={encoded_phone}", data=fields, timeout=30
            )
            assert response.status_code == 200
        assert (
            requests.post(f"{served.url}/at/sms?token={TOKEN}x", data=CALLBACKS["/at/sms"], timeout=30).status_code
            == 403
        )
        # An unexpected error: Flask logs the traceback, whose text quotes the phone and the URL.
        def broken(*_args, **_kwargs):
            raise RuntimeError(f"cannot store SMS from {FARMER} for /at/sms?token={TOKEN}")

        monkeypatch.setattr(webhooks, "receive", broken)
        assert (
            requests.post(
                f"{served.url}/at/sms?token={TOKEN}", data={**CALLBACKS["/at/sms"], "id": "boom"}, timeout=30
            ).status_code
            == 500
        )
        # And our own modules' lines, by a child of the smsgw logger.
        logging.getLogger("smsgw.web.webhooks").warning(
            "callback %s from %s", f"https://x.example/at/sms?token={TOKEN}", FARMER
        )

        def access_lines() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.name == "werkzeug" and "/at/" in r.getMessage()]

        # The server thread writes its access line after the client has the response.
        for _ in range(100):
            if len(access_lines()) >= 6:
                break
            time.sleep(0.05)
    text = caplog.text + "".join(record.getMessage() for record in caplog.records)
    access = access_lines()
    assert len(access) == 6, access  # the lines were written, redacted
    assert all("token=[redacted]" in line for line in access)
    leaks = [
        line for line in text.splitlines() if TOKEN.lower() in line.lower() or FARMER in line or "254700000002" in line
    ]
    assert leaks == []
    assert "+254*******01" in text and "RuntimeError" in text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("POST /at/sms?token=abc123xyz HTTP/1.1", "POST /at/sms?token=[redacted] HTTP/1.1"),
        ("/at/ussd?x=1&TOKEN=abc&y=2", "/at/ussd?x=1&TOKEN=[redacted]&y=2"),
        (
            "cb=https%3A%2F%2Fh%2Fat%2Fsms%3Ftoken%3Dabc%26x%3D1",
            "cb=https%3A%2F%2Fh%2Fat%2Fsms%3Ftoken%3D[redacted]%26x%3D1",
        ),
        ("u=a%253Ftoken%253Dabc%2526b", "u=a%253Ftoken%253D[redacted]%2526b"),
        ("from +254712345678 to %2B221770000001", "from +254*******78 to %2B221*******01"),
        ("phoneNumber=254712345678&x=1", "phoneNumber=254*******78&x=1"),
        ("order 12345678 for 3 bags", "order 12345678 for 3 bags"),
    ],
)
def test_redaction_patterns(raw: str, clean: str) -> None:
    assert redact(raw) == clean


def test_configured_secrets_are_redacted_anywhere_in_any_encoding() -> None:
    record = logging.LogRecord(
        "smsgw.x", logging.INFO, __file__, 1, "key %s then %s", ("s3cret/val&ue", "s3cret%2Fval%26ue"), None
    )
    RedactingFilter(["s3cret/val&ue"]).filter(record)
    assert record.getMessage() == "key [redacted] then [redacted]"


@pytest.mark.parametrize("name", ["gunicorn.access", "gunicorn.error"])
def test_gunicorn_lines_are_redacted_too(app, caplog, name) -> None:
    # gunicorn's access line: a format with a dict of atoms, the request line among them.
    atoms = {"h": "10.0.0.7", "r": f"POST /at/sms?token={TOKEN}&phoneNumber=%2B254700000001 HTTP/1.1", "s": "200"}
    with caplog.at_level(logging.INFO, logger=name):
        logging.getLogger(name).info('%(h)s "%(r)s" %(s)s', atoms)
    assert (
        caplog.records[-1].getMessage()
        == '10.0.0.7 "POST /at/sms?token=[redacted]&phoneNumber=%2B254*******01 HTTP/1.1" 200'
    )
