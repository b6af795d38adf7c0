"""The database taken away and brought back under a running app (PostgreSQL).

A TCP proxy sits between the app and PostgreSQL. With the proxy stopped an inbound
SMS is not acknowledged (AT retries it, so nothing is lost) and a USSD hop still gets
a short END apology at once; with the proxy back both work again in the same app,
without a restart (pool_pre_ping), and the retried SMS is stored exactly once.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa

from smsgw import create_app
from smsgw.conversations.ussd.session import apology
from smsgw.db import Database, utcnow
from smsgw.models import InboundMessage, OutboundMessage, UssdSession
from tests.support.databases import fresh_database
from tests.support.server import AppServer
from tests.support.tcp_proxy import TcpProxy

pytestmark = [
    pytest.mark.postgres,
]
FARMER = "+254700000001"
IN_TIME = 2.0  # seconds: AT gives up on a USSD hop after a few


@pytest.fixture()
def proxied(tmp_path) -> Iterator[tuple[TcpProxy, AppServer, Database]]:
    """A running app whose database goes through a proxy, and a direct Database for checks."""
    with fresh_database(tmp_path, "postgresql") as url:
        direct = Database(url)
        target = sa.make_url(url)
        with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            through = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            app = create_app({"DATABASE_URL": through, "WEBHOOK_TOKEN": ""})
            try:
                with AppServer(app) as server:
                    yield proxy, server, direct
            finally:
                app.extensions["smsgw.db"].dispose()
                direct.dispose()


def _sms(server: AppServer, gateway_id: str) -> requests.Response:
    fields = {"from": FARMER, "to": "22384", "text": "PRICE MAIZE", "id": gateway_id,
              "date": utcnow().strftime("%Y-%m-%d %H:%M:%S")}
    return requests.post(f"{server.url}/at/sms", data=fields, timeout=30)


def _ussd(server: AppServer, session_id: str, text: str = "") -> tuple[requests.Response, float]:
    fields = {
        "sessionId": session_id,
        "phoneNumber": FARMER,
        "serviceCode": "*384*1#",
        "networkCode": "63902",
        "text": text,
    }
    started = time.monotonic()
    response = requests.post(f"{server.url}/at/ussd", data=fields, timeout=30)
    return response, time.monotonic() - started


def _stored(direct: Database, gateway_id: str) -> tuple[int, int]:
    """(inbound rows with this id, replies queued for them), read around the proxy."""
    with direct.session() as session:
        ids = session.scalars(sa.select(InboundMessage.id).where(InboundMessage.gateway_id == gateway_id)).all()
        replies = session.scalar(
            sa.select(sa.func.count(OutboundMessage.id)).where(
                OutboundMessage.idempotency_key.in_([f"reply:{i}" for i in ids])
            )
        )
    return len(ids), replies


def test_database_outage_loses_no_sms_and_ussd_apologises_in_time(proxied) -> None:
    proxy, server, direct = proxied
    # Warm up: the app's pool holds connections through the proxy.
    assert _sms(server, "warm-1").status_code == 200
    response, _ = _ussd(server, "warm-s1")
    assert response.status_code == 200 and response.text.startswith("CON ")

    proxy.stop()
    refused = _sms(server, "ATXid_outage")
    assert refused.status_code != 200, "an SMS the database never saw must not be acknowledged"
    assert _stored(direct, "ATXid_outage") == (0, 0)
    response, elapsed = _ussd(server, "outage-s1")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert response.text == apology("en")
    assert elapsed < IN_TIME, f"the apology took {elapsed:.2f}s"
    response, _ = _ussd(server, "outage-s1", "1")
    assert response.text.startswith("END ")

    proxy.start()
    # AT retries the same SMS, more than once if our first 200 is slow to reach it.
    for _ in range(3):
        assert _sms(server, "ATXid_outage").status_code == 200
    assert _stored(direct, "ATXid_outage") == (1, 1)
    response, elapsed = _ussd(server, "after-s1")
    assert response.status_code == 200 and response.text.startswith("CON "), response.text
    assert elapsed < IN_TIME


HOP_SECONDS = 5  # the app's USSD_HOP_SECONDS default
AT_TIMEOUT = 10.0  # AT drops a USSD hop after about this long


def test_a_hung_database_gets_a_ussd_apology_in_time_and_the_app_comes_back(proxied) -> None:
    proxy, server, direct = proxied
    response, _ = _ussd(server, "warm-h1")
    assert response.text.startswith("CON ")

    # The database accepts connections and then never answers (a network partition).
    proxy.hang()
    try:
        for n in range(4):
            response, elapsed = _ussd(server, f"hung-{n}")
            assert response.status_code == 200 and response.text == apology("en"), response.text
            assert elapsed < HOP_SECONDS + 1.5 < AT_TIMEOUT, f"hop {n} took {elapsed:.2f}s"
    finally:
        proxy.unhang()
    back = time.monotonic()
    while True:
        response, elapsed = _ussd(server, f"back-{time.monotonic()}")
        if response.text.startswith("CON "):
            break
        assert time.monotonic() - back < 10, "the app was not back within 10 s of the database"
        time.sleep(0.2)
    assert elapsed < IN_TIME
    # The hops abandoned during the hang left no session behind: no effect without its screen.
    with direct.session() as session:
        assert not session.scalars(sa.select(UssdSession.session_id).where(UssdSession.session_id.like("hung-%"))).all()
