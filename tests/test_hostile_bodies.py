"""Callback bodies are limited whatever the transfer encoding (a real server, real sockets).

A chunked body has no Content-Length, so Werkzeug's own check never sees its size and
its form parser stopped reading at the limit: the first 64 kB were stored as if whole.
Over the limit is a 413 and nothing is stored; a normal chunked callback still works.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import requests
import sqlalchemy as sa

from smsgw import create_app
from smsgw.web.webhooks import MAX_CALLBACK_BYTES
from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import AppServer

FARMER = "+254700000001"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory) -> Iterator[tuple[AppServer, sa.Engine]]:
    """The app on a real server with a database of its own, and an engine to look into it."""
    with fresh_database(tmp_path_factory.mktemp("bodies"), request.param) as url:
        app = create_app({"DATABASE_URL": url, "WEBHOOK_TOKEN": ""})
        engine = sa.create_engine(url)
        try:
            with AppServer(app) as server:
                yield server, engine
        finally:
            engine.dispose()
            app.extensions["smsgw.db"].dispose()


def _chunked(body: bytes, size: int = 8192) -> Iterator[bytes]:
    # A generator makes requests send "Transfer-Encoding: chunked", with no Content-Length.
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _callback(path: str, ident: str, text: str) -> bytes:
    # The id comes first, so a body cut at the limit would still name a message to store.
    if path == "/at/sms":
        fields = {"id": ident, "from": FARMER, "to": "22384", "text": text}
    else:
        fields = {"sessionId": ident, "phoneNumber": FARMER, "serviceCode": "*384#", "text": text}
    return urlencode(fields).encode()


def _stored(engine: sa.Engine, path: str, ident: str) -> int:
    query = (
        "SELECT count(*) FROM inbound_message WHERE gateway_id = :i"
        if path == "/at/sms"
        else "SELECT count(*) FROM ussd_session WHERE session_id = :i"
    )
    with engine.connect() as conn:
        return conn.scalar(sa.text(query), {"i": ident})


@pytest.mark.parametrize("path", ["/at/sms", "/at/ussd"])
@pytest.mark.parametrize("size", [MAX_CALLBACK_BYTES + 1, MAX_CALLBACK_BYTES + 40_000, 4 * MAX_CALLBACK_BYTES])
def test_an_oversized_chunked_body_is_refused_and_nothing_stored(served, path, size) -> None:
    server, engine = served
    ident = f"big-{uuid.uuid4().hex[:10]}"
    body = _callback(path, ident, "")
    body = _callback(path, ident, "1" * (size - len(body)))
    assert len(body) == size
    response = requests.post(f"{server.url}{path}", data=_chunked(body), headers=FORM, timeout=30)
    assert response.status_code == 413
    assert _stored(engine, path, ident) == 0


@pytest.mark.parametrize("path", ["/at/sms", "/at/ussd"])
def test_an_oversized_body_with_a_length_is_refused_too(served, path) -> None:
    server, engine = served
    ident = f"len-{uuid.uuid4().hex[:10]}"
    body = _callback(path, ident, "1" * MAX_CALLBACK_BYTES)
    response = requests.post(f"{server.url}{path}", data=body, headers=FORM, timeout=30)
    assert response.status_code == 413
    assert _stored(engine, path, ident) == 0


@pytest.mark.parametrize("path", ["/at/sms", "/at/ussd"])
@pytest.mark.parametrize("chunk", [1, 7, 8192])
def test_a_normal_chunked_callback_still_works(served, path, chunk) -> None:
    server, engine = served
    ident = f"ok-{uuid.uuid4().hex[:10]}"
    body = _callback(path, ident, "HELP" if path == "/at/sms" else "")
    response = requests.post(f"{server.url}{path}", data=_chunked(body, chunk), headers=FORM, timeout=30)
    assert response.status_code == 200
    if path == "/at/ussd":
        assert response.text.startswith("CON ")
    assert _stored(engine, path, ident) == 1


@pytest.mark.parametrize("path", ["/at/sms", "/at/ussd"])
def test_a_chunked_body_just_under_the_limit_is_read_whole(served, path) -> None:
    server, engine = served
    ident = f"edge-{uuid.uuid4().hex[:10]}"
    body = _callback(path, ident, "")
    body = _callback(path, ident, "2" * (MAX_CALLBACK_BYTES - len(body)))
    assert len(body) == MAX_CALLBACK_BYTES
    response = requests.post(f"{server.url}{path}", data=_chunked(body), headers=FORM, timeout=30)
    assert response.status_code == 200
    assert _stored(engine, path, ident) == 1
