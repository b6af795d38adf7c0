"""Delivery reports as AT posts them: kept as received, applied forward only, in any order."""
from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from smsgw.db import utcnow
from smsgw.messaging.delivery import record_delivery_report
from smsgw.messaging.outbox import enqueue
from smsgw.models import DeliveryReport, OutboundMessage

PHONE = "+254700000301"
FAILURES = ("Rejected", "Failed", "Expired", "AbsentSubscriber")


def _sent(session, gateway_id: str, status: str = "sent") -> OutboundMessage:
    key = f"dlr:{gateway_id}"
    message = enqueue(session, to=PHONE, text="Maize 3200", purpose="reply", key=key)
    message.status = status
    message.gateway_message_id = gateway_id
    message.sent_at = utcnow()
    session.commit()
    return message


def _report(session, gateway_id: str, status: str, **extra: str) -> DeliveryReport | None:
    fields = {"id": gateway_id, "status": status, "phoneNumber": PHONE, "networkCode": "63902"}
    return record_delivery_report(session, {**fields, **extra})


def _reports(session, gateway_id: str) -> list[DeliveryReport]:
    query = sa.select(DeliveryReport).where(DeliveryReport.gateway_message_id == gateway_id)
    return list(session.scalars(query.order_by(DeliveryReport.id)))


def _expected(statuses: tuple[str, ...]) -> str:
    if "Success" in statuses:
        return "delivered"
    if any(status in FAILURES for status in statuses):
        return "failed"
    return "sent"


ORDERS = [
    *itertools.permutations(("Submitted", "Buffered", "Sent", "Success")),
    *itertools.permutations(("Sent", "Failed", "Success")),
    *itertools.permutations(("Buffered", "AbsentSubscriber", "Sent")),
    *itertools.permutations(("Rejected", "Expired")),
    ("Success", "Success"),
    ("Buffered", "Buffered"),
]


def test_reports_in_any_order_leave_the_right_final_status(session) -> None:
    for n, statuses in enumerate(ORDERS):
        message = _sent(session, f"ATXid_order_{n}")
        for status in statuses:
            report = _report(session, f"ATXid_order_{n}", status, failureReason="UserInBlacklist")
            assert report is not None and report.outbound_id == message.id
        session.commit()
        assert message.status == _expected(statuses), statuses
        assert len(_reports(session, f"ATXid_order_{n}")) == len(statuses)
        if message.status in ("delivered", "failed"):
            assert message.final_at is not None


def test_success_is_final_and_clears_an_earlier_failure(session) -> None:
    message = _sent(session, "ATXid_late_success")
    _report(session, "ATXid_late_success", "Failed", failureReason="DeliveryFailure")
    assert (message.status, message.last_error) == ("failed", "DeliveryFailure")
    _report(session, "ATXid_late_success", "Success")
    assert (message.status, message.last_error) == ("delivered", "")
    _report(session, "ATXid_late_success", "Rejected", failureReason="InsufficientCredit")
    _report(session, "ATXid_late_success", "Buffered")
    assert (message.status, message.last_error) == ("delivered", "")


def test_failure_reason_falls_back_to_the_status(session) -> None:
    message = _sent(session, "ATXid_no_reason")
    _report(session, "ATXid_no_reason", "Expired")
    assert (message.status, message.last_error) == ("failed", "Expired")


@pytest.mark.parametrize(
    ("before", "after"),
    [("queued", "sent"), ("sending", "sent"), ("unknown", "sent"), ("failed", "failed")],
)
def test_in_flight_reports_never_reopen_an_end(session, before: str, after: str) -> None:
    message = _sent(session, f"ATXid_from_{before}", status=before)
    _report(session, f"ATXid_from_{before}", "Submitted")
    assert message.status == after


def test_a_repeated_report_has_the_same_effect(session) -> None:
    message = _sent(session, "ATXid_twice")
    _report(session, "ATXid_twice", "Success")
    session.commit()
    first = (message.status, message.final_at, message.last_error)
    _report(session, "ATXid_twice", "Success")
    session.commit()
    assert (message.status, message.final_at, message.last_error) == first
    assert len(_reports(session, "ATXid_twice")) == 2


def test_report_fields_are_stored_as_received(session) -> None:
    message = _sent(session, "ATXid_fields")
    report = _report(
        session, "ATXid_fields", "Failed", failureReason="UserInBlacklist", retryCount="2"
    )
    session.commit()
    assert report is not None
    stored = session.get(DeliveryReport, report.id)
    assert (stored.status, stored.phone, stored.network_code) == ("Failed", PHONE, "63902")
    assert (stored.failure_reason, stored.retry_count, stored.outbound_id) == (
        "UserInBlacklist",
        2,
        message.id,
    )


def test_unknown_id_is_stored_without_touching_any_message(session) -> None:
    message = _sent(session, "ATXid_known")
    assert _report(session, "ATXid_nobody_sent_this", "Success") is None
    session.commit()
    (stored,) = _reports(session, "ATXid_nobody_sent_this")
    assert stored.outbound_id is None and stored.status == "Success"
    session.refresh(message)
    assert message.status == "sent"


@pytest.mark.parametrize(
    "fields", [{}, {"id": ""}, {"id": "   ", "status": "Success"}, {"status": "Failed"}]
)
def test_a_report_without_an_id_stores_nothing(session, fields) -> None:
    before = session.scalar(sa.select(sa.func.count()).select_from(DeliveryReport))
    assert record_delivery_report(session, fields) is None
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(DeliveryReport)) == before


@pytest.mark.parametrize(
    "extra",
    [
        {"retryCount": "lots"},
        {"retryCount": "99999999999999999999"},
        {"retryCount": "-1"},
        {"phoneNumber": "+254" + "7" * 40},
        {"networkCode": "x" * 50, "failureReason": "r" * 500},
        {"status": "SomethingNew" * 5},
        {"status": ""},
    ],
)
def test_bad_fields_never_raise(session, extra) -> None:
    message = _sent(session, "ATXid_bad")
    fields = {"id": "ATXid_bad", "status": "Buffered", "phoneNumber": PHONE, **extra}
    report = record_delivery_report(session, fields)
    session.commit()
    if "phoneNumber" in extra:
        # Not the recipient's number: stored, applied to nothing.
        assert report is None and _reports(session, "ATXid_bad")[-1].outbound_id is None
    else:
        assert report is not None and report.outbound_id == message.id
    assert message.status == "sent"


# ------------------------------------------------------------------ the report's number

@pytest.mark.parametrize(
    "number",
    ["+254700000302", "+221700000301", "", "   ", "not a number", "+254 7OO OOO 3O1", "+2547000003010", None],
)
def test_a_report_for_another_number_is_stored_but_changes_nothing(session, number) -> None:
    gateway_id = f"ATXid_forged_{abs(hash(number))}"
    message = _sent(session, gateway_id)
    fields = {"id": gateway_id, "status": "Failed", "failureReason": "Forged", "networkCode": "63902"}
    if number is not None:
        fields["phoneNumber"] = number
    assert record_delivery_report(session, fields) is None
    session.commit()
    session.refresh(message)
    assert (message.status, message.last_error, message.final_at) == ("sent", "", None)
    (stored,) = _reports(session, gateway_id)
    assert (stored.status, stored.failure_reason, stored.outbound_id) == ("Failed", "Forged", None)
    assert stored.phone == ((number or "").strip()[:16] or None)


def test_a_forged_success_does_not_settle_a_failed_message_either(session) -> None:
    message = _sent(session, "ATXid_forged_success", status="failed")
    assert _report(session, "ATXid_forged_success", "Success", phoneNumber="+254700000999") is None
    assert message.status == "failed"


@pytest.mark.parametrize(
    "number", [PHONE, " +254700000301 ", "0700000301", "00254700000301", "+254 700 000 301", "254700000301"]
)
def test_the_recipients_number_in_any_usual_form_applies(session, number) -> None:
    gateway_id = f"ATXid_same_{abs(hash(number))}"
    message = _sent(session, gateway_id)
    report = _report(session, gateway_id, "Success", phoneNumber=number)
    assert report is not None and report.outbound_id == message.id
    assert message.status == "delivered"


def test_a_national_number_is_read_in_the_recipients_country(session) -> None:
    message = enqueue(session, to="+221770000301", text="Mil 250", purpose="reply", key="dlr:sn")
    message.status, message.gateway_message_id, message.sent_at = "sent", "ATXid_sn", utcnow()
    session.commit()
    assert _report(session, "ATXid_sn", "Success", phoneNumber="77 000 03 01") is not None
    assert message.status == "delivered"


def test_on_the_webhook_a_forged_report_changes_nothing(client, session) -> None:
    message = _sent(session, "ATXid_forged_web")
    fields = {"id": "ATXid_forged_web", "status": "Success", "phoneNumber": "+254700000001"}
    assert client.post("/at/delivery", data=fields).status_code == 200
    session.expire_all()
    assert session.get(OutboundMessage, message.id).status == "sent"
    (stored,) = _reports(session, "ATXid_forged_web")
    assert (stored.status, stored.outbound_id) == ("Success", None)
