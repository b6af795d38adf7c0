"""No inbound SMS is lost to a bug: stored and committed first, a failed handling apologised for.

A handler made to raise (fault injection) leaves the message stored with its error, AT
gets its 200, the farmer a short apology in their language; AT's retries change
nothing, and an operator's retry (function or admin button) answers it exactly once.
"""
from __future__ import annotations

import itertools
import threading
import time

import pytest
import requests
import sqlalchemy as sa

from smsgw import create_app
from smsgw.conversations.sms import intake
from smsgw.conversations.sms.intake import APOLOGY, retry_inbound
from smsgw.conversations.sms.router import dispatch as real_dispatch
from smsgw.db import Database, utcnow
from smsgw.i18n import Text
from smsgw.messaging.encoding import encode_for_sms
from smsgw.models import AuditEntry, Contact, InboundMessage, OutboundMessage
from tests.support.databases import BACKENDS, fresh_database
from tests.support.server import AppServer
from tests.test_admin_fixtures import post

pytest_plugins = ["tests.test_admin_fixtures"]

FARMER = "+254700000001"  # English
_ids = itertools.count()


def fields(phone: str = FARMER, text: str = "PRICE MAIZE", gateway_id: str | None = None) -> dict[str, str]:
    """One inbound SMS with AT's documented field names."""
    return {
        "from": phone, "to": "22384", "text": text, "id": gateway_id or f"ATXid_safe_{next(_ids)}",
        "date": "2026-12-04 06:00:00", "linkId": "", "networkCode": "63902",
    }


def broken(*_args, **_kwargs):
    """A handler bug, with the sender's number in its message (it must be masked)."""
    raise RuntimeError(f"boom for {FARMER}\nsecond line")


@pytest.fixture()
def fault(monkeypatch):
    """Every command handler raises until ``fault.clear()``."""

    class Fault:
        def clear(self) -> None:
            monkeypatch.setattr(intake, "dispatch", real_dispatch)

    monkeypatch.setattr(intake, "dispatch", broken)
    return Fault()


def inbound(session, gateway_id: str) -> list[InboundMessage]:
    query = sa.select(InboundMessage).where(InboundMessage.gateway_id == gateway_id)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def outbox(session, *keys: str) -> list[OutboundMessage]:
    query = sa.select(OutboundMessage).where(OutboundMessage.idempotency_key.in_(keys)).order_by(OutboundMessage.id)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def apology(lang: str) -> str:
    """The apology as the outbox stores it in ``lang``."""
    return encode_for_sms(Text(lang)(APOLOGY), lang).text


def test_handler_bug_stores_the_message_answers_200_and_apologises(client, session, settings, fault) -> None:
    sms = fields(gateway_id="ATXid_bug_1")
    assert client.post("/at/sms", data=sms).status_code == 200
    [row] = inbound(session, "ATXid_bug_1")
    assert row.status == "error" and row.command == "price"
    assert row.error.startswith("RuntimeError: boom for") and "\n" not in row.error
    assert FARMER not in row.error and "Traceback" not in row.error
    keys = (f"reply:{row.id}", f"apology:{row.id}")
    [queued] = outbox(session, *keys)
    assert (queued.idempotency_key, queued.purpose, queued.text) == (f"apology:{row.id}", "reply", apology("en"))
    assert queued.to_phone == FARMER and queued.contact_id == row.contact_id is not None

    # AT sends the same id again (its 200 got lost): nothing changes.
    for _ in range(3):
        assert client.post("/at/sms", data=sms).status_code == 200
    assert [(r.id, r.status) for r in inbound(session, "ATXid_bug_1")] == [(row.id, "error")]
    assert len(outbox(session, *keys)) == 1

    fault.clear()
    assert retry_inbound(session, settings, row.id) == "handled"
    [row] = inbound(session, "ATXid_bug_1")
    assert (row.status, row.error) == ("handled", None)
    sent = outbox(session, *keys)
    assert [m.idempotency_key for m in sent] == [f"apology:{row.id}", f"reply:{row.id}"]
    assert "Maize" in sent[1].text
    # A second retry of a handled message does nothing.
    assert retry_inbound(session, settings, row.id) is None
    assert len(outbox(session, *keys)) == 2 and inbound(session, "ATXid_bug_1")[0].status == "handled"


@pytest.mark.parametrize(
    ("phone", "text", "lang"),
    [
        ("+221770000002", "PRIX MIL KAOLACK", "fr"),
        ("+254700000002", "BEI MAHINDI", "sw"),
        ("+221770000001", "NJEG DUGUB", "wo"),
    ],
)
def test_the_apology_is_in_the_farmers_language(client, session, fault, phone, text, lang) -> None:
    sms = fields(phone, text)
    assert client.post("/at/sms", data=sms).status_code == 200
    [row] = inbound(session, sms["id"])
    [queued] = outbox(session, f"apology:{row.id}", f"reply:{row.id}")
    assert queued.text == apology(lang) and queued.text != apology("en")
    assert queued.segments == 1 and queued.encoding == "gsm7"


def test_a_parser_bug_is_caught_too(client, session, monkeypatch) -> None:
    def no_parse(*_args, **_kwargs):
        raise ValueError("parser bug")

    monkeypatch.setattr(intake, "parse", no_parse)
    sms = fields("+221770000002", "PRIX MIL")
    assert client.post("/at/sms", data=sms).status_code == 200
    [row] = inbound(session, sms["id"])
    assert (row.status, row.error, row.command) == ("error", "ValueError: parser bug", "")
    # No parse, so the contact's stored language decides.
    assert [m.text for m in outbox(session, f"apology:{row.id}")] == [apology("fr")]


def test_the_handling_is_undone_but_not_the_message(client, session, monkeypatch) -> None:
    # The handler changed something before failing: that change is rolled back.
    def half_done(db, settings, message, contact, parsed):
        contact.name = "Changed by a half-done handler"
        db.flush()
        raise RuntimeError("failed halfway")

    monkeypatch.setattr(intake, "dispatch", half_done)
    sms = fields()
    assert client.post("/at/sms", data=sms).status_code == 200
    [row] = inbound(session, sms["id"])
    assert row.status == "error"
    contact = session.scalar(
        sa.select(Contact).where(Contact.phone == FARMER).execution_options(populate_existing=True)
    )
    assert contact.name == "Wanjiru Kamau"


def test_no_apology_after_stop_or_to_someone_who_opted_out(client, session, fault) -> None:
    stop = fields(text="STOP")
    assert client.post("/at/sms", data=stop).status_code == 200
    [row] = inbound(session, stop["id"])
    assert row.status == "error" and outbox(session, f"apology:{row.id}") == []
    contact = session.scalar(sa.select(Contact).where(Contact.phone == FARMER))
    contact.consent = "withdrawn"
    session.commit()
    later = fields(text="PRICE MAIZE")
    assert client.post("/at/sms", data=later).status_code == 200
    [row] = inbound(session, later["id"])
    assert row.status == "error" and outbox(session, f"apology:{row.id}") == []


def test_the_apology_obeys_the_reply_caps(client, session, settings, fault) -> None:
    ids = []
    for _ in range(int(settings["SMS_REPLIES_PER_HOUR"]) + 3):
        sms = fields()
        assert client.post("/at/sms", data=sms).status_code == 200
        ids.append(inbound(session, sms["id"])[0].id)
    apologies = outbox(session, *(f"apology:{i}" for i in ids))
    assert len(apologies) == settings["SMS_REPLIES_PER_HOUR"]


def test_a_failing_retry_stays_in_error_and_does_not_apologise_twice(client, session, settings, fault) -> None:
    sms = fields()
    client.post("/at/sms", data=sms)
    [row] = inbound(session, sms["id"])
    assert retry_inbound(session, settings, row.id) == "error"
    assert inbound(session, sms["id"])[0].status == "error"
    assert len(outbox(session, f"apology:{row.id}", f"reply:{row.id}")) == 1


def test_a_fresh_received_message_is_not_retried_but_a_stuck_one_is(client, session, settings) -> None:
    # A process that died between the two transactions leaves "received".
    row = InboundMessage(gateway_id="ATXid_stuck", from_phone=FARMER, text="PRICE MAIZE", status="received")
    session.add(row)
    session.commit()
    assert retry_inbound(session, settings, row.id) is None
    row.received_at = utcnow() - intake.STUCK_AFTER * 2
    session.commit()
    assert retry_inbound(session, settings, row.id) == "handled"
    assert len(outbox(session, f"reply:{row.id}")) == 1
    assert retry_inbound(session, settings, 10**9) is None


def test_when_even_the_error_cannot_be_recorded_the_message_stays_received(
    client, session, settings, fault, monkeypatch
) -> None:
    def also_broken(*_args, **_kwargs):
        raise RuntimeError("database gone after the raw commit")

    monkeypatch.setattr(intake, "_record_error", also_broken)
    sms = fields()
    assert client.post("/at/sms", data=sms).status_code == 200  # the message itself is stored
    [row] = inbound(session, sms["id"])
    assert (row.status, row.error) == ("received", None)
    # Later an operator retries it like an error (see the stuck test below).


def test_a_forgotten_sender_is_not_answered_on_retry(client, session, settings, fault) -> None:
    from smsgw.services.privacy import forget_contact

    sms = fields()
    client.post("/at/sms", data=sms)
    [row] = inbound(session, sms["id"])
    forget_contact(session, FARMER)
    session.commit()
    fault.clear()
    assert retry_inbound(session, settings, row.id) is None
    assert outbox(session, f"reply:{row.id}") == []


def test_a_database_error_before_the_raw_commit_is_not_acknowledged(app, client, session, monkeypatch) -> None:
    def down(*_args, **_kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(intake, "find_contact", down)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    sms = fields()
    assert client.post("/at/sms", data=sms).status_code == 500
    assert inbound(session, sms["id"]) == []


def test_the_admin_lists_the_error_escaped_and_retries_it(app, client, session, operator, as_role, monkeypatch) -> None:
    def xss(*_args, **_kwargs):
        raise RuntimeError('<script>alert("x")</script>')

    monkeypatch.setattr(intake, "dispatch", xss)
    sms = fields()
    assert client.post("/at/sms", data=sms).status_code == 200
    [row] = inbound(session, sms["id"])
    listing = operator.get("/admin/messages?direction=in&status=error").get_data(as_text=True)
    assert f'id="inbound-{row.id}"' in listing and 'badge failed' in listing
    assert "<script>alert" not in listing and "&lt;script&gt;alert" in listing
    assert f"/admin/messages/inbound/{row.id}/retry" in listing
    handled = operator.get("/admin/messages?direction=in&status=handled").get_data(as_text=True)
    assert f'id="inbound-{row.id}"' not in handled

    url = f"/admin/messages/inbound/{row.id}/retry"
    assert operator.post(url).status_code == 400  # no CSRF token
    assert post(as_role("viewer"), url).status_code == 403
    assert inbound(session, sms["id"])[0].status == "error"

    monkeypatch.setattr(intake, "dispatch", real_dispatch)
    assert post(operator, url).status_code == 302
    assert inbound(session, sms["id"])[0].status == "handled"
    assert len(outbox(session, f"reply:{row.id}")) == 1
    audits = list(session.scalars(sa.select(AuditEntry).where(AuditEntry.entity == "inbound_message")))
    assert [(a.action, a.entity_id, a.before["status"], a.after["status"]) for a in audits] == [
        ("retry", str(row.id), "error", "handled")
    ]
    post(operator, url)  # handled: nothing happens
    assert len(outbox(session, f"reply:{row.id}")) == 1
    assert session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.entity == "inbound_message")) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_on_a_real_server_the_message_survives_the_rollback(tmp_path, monkeypatch, backend) -> None:
    monkeypatch.setattr(intake, "dispatch", broken)
    with fresh_database(tmp_path, backend) as url:
        app = create_app({"DATABASE_URL": url, "WEBHOOK_TOKEN": ""})
        direct = Database(url)
        try:
            with AppServer(app) as server:
                sms = fields(gateway_id="ATXid_server")
                for _ in range(2):
                    assert requests.post(f"{server.url}/at/sms", data=sms, timeout=30).status_code == 200
            with direct.session() as session:
                [row] = inbound(session, "ATXid_server")
                assert row.status == "error"
                assert [m.idempotency_key for m in outbox(session, f"apology:{row.id}", f"reply:{row.id}")] == [
                    f"apology:{row.id}"
                ]
            monkeypatch.setattr(intake, "dispatch", _slow_dispatch)
            settings = app.config
            results: list[str | None] = []

            def operator_retry() -> None:
                with direct.session() as session:
                    results.append(retry_inbound(session, settings, row.id))

            # Two operators click "retry" at the same moment: it is handled once.
            threads = [threading.Thread(target=operator_retry) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert sorted(results, key=str) == sorted(["handled", None], key=str)
            with direct.session() as session:
                assert inbound(session, "ATXid_server")[0].status == "handled"
                assert len(outbox(session, f"reply:{row.id}")) == 1
        finally:
            app.extensions["smsgw.db"].dispose()
            direct.dispose()


def _slow_dispatch(*args, **kwargs):
    time.sleep(0.3)  # long enough for the second retry to arrive while the first works
    return real_dispatch(*args, **kwargs)
