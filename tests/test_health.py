"""`GET /healthz` and the dashboard's health block: each failure alone, named, with no personal data."""
from __future__ import annotations

import datetime as dt
import importlib.util
import re

import pytest
import sqlalchemy as sa

from smsgw import create_app
from smsgw.db import utcnow
from smsgw.models import OutboundMessage
from smsgw.services import health, runtime_state

pytest_plugins = ["tests.test_admin_fixtures"]

PHONE = "+254700000077"
DIGITS = re.compile(r"\d{7,}")


def _beat(session, age: dt.timedelta = dt.timedelta(seconds=5)) -> None:
    """A scheduler heartbeat written ``age`` ago, committed in the test's transaction."""
    runtime_state.put(session, runtime_state.SCHEDULER, {"pid": 4242, "host": "test"}, now=utcnow() - age)
    session.commit()


def _reply(session, age: dt.timedelta, status: str = "queued", purpose: str = "reply") -> None:
    session.add(OutboundMessage(
        idempotency_key=f"test:health:{purpose}:{status}:{age.total_seconds()}", to_phone=PHONE, text="Maize 42 KES/kg",
        purpose=purpose, priority=0 if purpose == "reply" else 5, status=status, created_at=utcnow() - age,
    ))
    session.commit()


def _pause(session, reason: str) -> None:
    runtime_state.put(session, runtime_state.GATEWAY_PAUSE, {
        "reason": reason, "since": utcnow().isoformat(), "retry_at": (utcnow() + dt.timedelta(minutes=5)).isoformat(),
    })
    session.commit()


def _healthz(client, status: int) -> dict:
    response = client.get("/healthz")
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body["checks"]) == set(health.NAMES)
    assert body["ok"] is (status == 200)
    assert not DIGITS.search(response.get_data(as_text=True).replace(body["checks"]["schema"]["detail"], ""))
    return body


def _only_failing(body: dict) -> str:
    """The name of the one failing check, and that it is the only one."""
    failing = [name for name, item in body["checks"].items() if not item["ok"]]
    assert len(failing) == 1, body
    return failing[0]


def test_all_good_answers_200(client, session) -> None:
    _beat(session)
    _reply(session, dt.timedelta(minutes=1))
    _reply(session, dt.timedelta(hours=2), purpose="bulletin")  # bulk waits; only replies count
    body = _healthz(client, 200)
    assert all(item["ok"] for item in body["checks"].values())
    assert body["checks"]["replies"]["detail"] == "1 reply waiting, oldest 60 s"
    assert body["checks"]["gateway"]["detail"] == "sending"


def test_no_heartbeat_fails_the_scheduler_check(client) -> None:
    body = _healthz(client, 503)
    assert _only_failing(body) == "scheduler"
    assert "no heartbeat" in body["checks"]["scheduler"]["detail"]


def test_a_stale_heartbeat_says_how_old(client, session) -> None:
    _beat(session, dt.timedelta(minutes=3))
    body = _healthz(client, 503)
    assert _only_failing(body) == "scheduler"
    assert "last heartbeat 3 min ago" in body["checks"]["scheduler"]["detail"]


@pytest.mark.parametrize("status", ["queued", "sending"])
def test_a_reply_waiting_six_minutes_fails(client, session, status: str) -> None:
    _beat(session)
    _reply(session, dt.timedelta(minutes=6), status=status)
    _reply(session, dt.timedelta(seconds=30))
    _reply(session, dt.timedelta(minutes=20), status="sent")  # gone: does not count
    body = _healthz(client, 503)
    assert _only_failing(body) == "replies"
    assert body["checks"]["replies"]["detail"].startswith("2 replies waiting, oldest 6 min")


def test_a_paused_gateway_fails_with_its_reason_and_no_number(client, session) -> None:
    _beat(session)
    _pause(session, f"AT refused every message:\nInsufficientBalance for {PHONE}")
    body = _healthz(client, 503)
    assert _only_failing(body) == "gateway"
    detail = body["checks"]["gateway"]["detail"]
    assert detail.startswith("paused: AT refused every message: InsufficientBalance for [number]; since ")
    assert "next try" in detail and "\n" not in detail


def test_a_schema_behind_the_latest_migration_fails(client, session) -> None:
    _beat(session)
    session.execute(sa.text("UPDATE alembic_version SET version_num = '88e10bc11819'"))
    session.commit()
    body = _healthz(client, 503)
    assert _only_failing(body) == "schema"
    assert "run `smsgw init`" in body["checks"]["schema"]["detail"]


def _unreachable_urls(tmp_path) -> list[str]:
    # A directory cannot be opened as a SQLite file; nothing listens on port 1.
    urls = [f"sqlite:///{tmp_path}"]
    if importlib.util.find_spec("psycopg"):
        urls.append("postgresql+psycopg://postgres@127.0.0.1:1/x")
    return urls


def test_an_unreachable_database_answers_503_not_500(tmp_path) -> None:
    for url in _unreachable_urls(tmp_path):
        app = create_app({"TESTING": True, "DATABASE_URL": url, "WEBHOOK_TOKEN": "secret"})
        try:
            body = _healthz(app.test_client(), 503)
        finally:
            app.extensions["smsgw.db"].dispose()
        assert not body["checks"]["database"]["ok"], url
        assert body["checks"]["database"]["detail"].startswith("did not answer"), url
        assert "127.0.0.1" not in str(body) and str(tmp_path) not in str(body)
        assert all(not item["ok"] for item in body["checks"].values())


def test_healthz_needs_no_token_and_no_sign_in(app, client, session) -> None:
    _beat(session)
    app.config["WEBHOOK_TOKEN"] = "secret"
    assert client.post("/at/sms").status_code == 403  # the webhooks still want the token
    _healthz(client, 200)


def test_the_service_takes_an_engine_and_its_own_thresholds(engine) -> None:
    checks = {item.name: item for item in health.check(engine, utcnow())}
    assert list(checks) == list(health.NAMES)
    assert checks["database"].ok and checks["schema"].ok
    relaxed = health.check(engine, utcnow(), {"HEALTH_HEARTBEAT_MAX_SECONDS": "60"})
    assert [item.name for item in relaxed] == list(health.NAMES)


def test_thresholds_come_from_settings_when_given(session) -> None:
    _beat(session, dt.timedelta(minutes=3))
    assert not health.check(session, utcnow())[2].ok
    assert health.check(session, utcnow(), {"HEALTH_HEARTBEAT_MAX_SECONDS": 600})[2].ok


def test_dashboard_shows_a_red_banner_naming_what_fails(operator, session) -> None:
    _beat(session)
    _pause(session, '<script>alert("x")</script> bad API key')
    page = operator.get("/admin/").get_data(as_text=True)
    banner = page[page.index('id="health-banner"'):page.index("</div>", page.index('id="health-banner"'))]
    assert "SMS gateway: paused: &lt;script&gt;" in banner and "bad API key" in banner
    assert "Scheduler" not in banner
    assert "<script" not in page
    assert 'id="health-gateway"' in page and 'id="health-scheduler"' in page


def test_dashboard_has_no_banner_when_all_pass(operator, session) -> None:
    _beat(session)
    page = operator.get("/admin/").get_data(as_text=True)
    assert 'id="health-banner"' not in page
    assert "Service health" in page and 'id="health-replies"' in page and "no reply waiting" in page
