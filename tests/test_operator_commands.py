"""Operator commands never send or double someone else's messages.

``smsgw simulate sms`` sends only the reply it caused (other people's queued bulletins
stay queued), and the admin's retry of a failed message forgets the first attempt's
gateway id, so a late delivery report for that attempt cannot move the new one.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from smsgw.db import Database, utcnow
from smsgw.messaging.outbox import enqueue
from smsgw.models import AuditEntry, Contact, InboundMessage, OutboundMessage
from smsgw.web.database import get_session
from tests.support.databases import BACKENDS, fresh_database
from tests.test_admin_fixtures import post

pytest_plugins = ["tests.test_admin_fixtures"]

FARMER, NEIGHBOUR = "+254700000001", "+254700000002"


@pytest.mark.parametrize("backend", BACKENDS)
def test_simulate_sms_prints_its_reply_and_sends_nothing_else(tmp_path, backend) -> None:
    with fresh_database(tmp_path, backend) as url:
        db = Database(url)
        try:
            with db.session() as session:
                neighbour = session.scalar(sa.select(Contact).where(Contact.phone == NEIGHBOUR))
                enqueue(session, to=NEIGHBOUR, text="Bei 4 Des: Mahindi Nakuru KSh 4,300", purpose="bulletin",
                        key="bulletin:daily:test:neighbour", lang="sw", contact_id=neighbour.id)
            result = subprocess.run(
                [sys.executable, "-m", "smsgw", "simulate", "sms", "--phone", FARMER, "PRICE MAIZE"],
                check=False, capture_output=True, text=True, timeout=60, env={**os.environ, "DATABASE_URL": url},
            )
            assert result.returncode == 0, result.stderr
            assert f"--- SMS to {FARMER} ---" in result.stdout and "Maize" in result.stdout
            assert NEIGHBOUR not in result.stdout
            with db.session() as session:
                bulletin = session.scalar(
                    sa.select(OutboundMessage).where(OutboundMessage.idempotency_key == "bulletin:daily:test:neighbour")
                )
                assert (bulletin.status, bulletin.attempts, bulletin.gateway_message_id) == ("queued", 0, None)
                inbound = session.scalar(sa.select(InboundMessage).where(InboundMessage.from_phone == FARMER))
                reply = session.scalar(
                    sa.select(OutboundMessage).where(OutboundMessage.idempotency_key == f"reply:{inbound.id}")
                )
                assert inbound.status == "handled" and reply.status == "sent"
        finally:
            db.dispose()


def _failed(app, gateway_id: str) -> int:
    with app.app_context():
        session = get_session()
        row = OutboundMessage(
            idempotency_key=f"reply:test:{gateway_id}", to_phone=FARMER, text="Maize Nakuru KSh 4,300", purpose="reply",
            status="failed", attempts=6, last_error="DeliveryFailure", final_at=utcnow(), sent_at=utcnow(),
            gateway_message_id=gateway_id,
        )
        session.add(row)
        session.commit()
        return row.id


def _report(client, gateway_id: str, status: str) -> None:
    fields = {"id": gateway_id, "status": status, "phoneNumber": FARMER, "networkCode": "63902", "retryCount": "0"}
    if status in ("Failed", "Rejected"):
        fields["failureReason"] = "DeliveryFailure"
    assert client.post("/at/delivery", data=fields).status_code == 200


def _row(session, message_id: int) -> OutboundMessage:
    return session.get(OutboundMessage, message_id, populate_existing=True)


def test_a_late_report_for_the_first_attempt_cannot_move_the_retried_message(app, client, session, operator) -> None:
    message_id = _failed(app, "ATXid_first")
    assert post(operator, f"/admin/messages/{message_id}/retry").status_code == 302
    row = _row(session, message_id)
    assert (row.status, row.attempts, row.gateway_message_id) == ("queued", 0, None)
    assert "ATXid_first" in row.last_error and "DeliveryFailure" in row.last_error
    entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.entity == "outbound_message")).one()
    assert entry.before["gateway_message_id"] == "ATXid_first" and entry.after["gateway_message_id"] is None

    for status in ("Buffered", "Sent", "Failed", "Success"):
        _report(client, "ATXid_first", status)
        assert _row(session, message_id).status == "queued", status

    # The drain sends it again and AT gives the new attempt a new id.
    row = _row(session, message_id)
    row.status, row.gateway_message_id, row.sent_at, row.last_error = "sent", "ATXid_second", utcnow(), ""
    session.commit()
    for status in ("Failed", "Buffered", "Sent"):
        _report(client, "ATXid_first", status)
        assert (_row(session, message_id).status, _row(session, message_id).last_error) == ("sent", ""), status
    _report(client, "ATXid_second", "Success")
    assert _row(session, message_id).status == "delivered"
