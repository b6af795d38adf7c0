"""The admin's phone simulator is a sandbox unless the operator chooses a real contact.

Issue 17 item 7: by default it plays as a reserved number; what that number does is saved
on a simulated contact, its SMS are marked simulated and never handed to the gateway, and
analytics leave it out. Playing as a real contact needs the choice and its confirmation,
and is audited.
"""
from __future__ import annotations

import io

import sqlalchemy as sa

from smsgw.analytics.data import load_engagement, load_people, load_sales
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways.console import ConsoleGateway
from smsgw.models import AuditEntry, Contact, InboundMessage, Market, OutboundMessage, SaleReport, Subscription
from smsgw.phones import is_simulator_number
from smsgw.services import simulation
from tests.test_admin_fixtures import post

pytest_plugins = ["tests.test_admin_fixtures"]

SANDBOX = simulation.simulated_phone("+254", 1)
REAL_FARMER = "+254700000001"


def _sms(client, phone: str, text: str, **ticks: str):
    return post(
        client,
        "/admin/simulator/sms",
        {"phone": phone, "text": text, "send_sms": "Send", **ticks},
        page="/admin/simulator?mode=sms",
    )


def test_the_reserved_range_is_valid_mobiles_of_each_country_and_nothing_else() -> None:
    assert is_simulator_number("+254709999900") and is_simulator_number("+221709999999")
    assert not is_simulator_number("+254700000001") and not is_simulator_number("+2547099999001")
    assert simulation.default_phone("+221,+254") == "+221709999901"


def test_the_simulator_plays_as_a_simulated_number_by_default(operator) -> None:
    page = operator.get("/admin/simulator").get_data(as_text=True)
    assert f'value="{SANDBOX}"' in page and 'id="sandbox"' in page


def test_a_simulated_farmers_sms_are_shown_never_sent_and_left_out_of_analytics(app, operator, connection, db) -> None:
    assert _sms(operator, SANDBOX, "SUB MAIZE NAKURU").status_code == 200
    response = _sms(operator, SANDBOX, "PRICE MAIZE")
    assert response.status_code == 200
    contact = connection.execute(sa.select(Contact).where(Contact.phone == SANDBOX)).one()
    assert contact.simulated
    assert (
        connection.scalar(
            sa.select(sa.func.count()).select_from(Subscription).where(Subscription.contact_id == contact.id)
        )
        == 1
    )
    inbound = connection.scalars(sa.select(InboundMessage.simulated).where(InboundMessage.from_phone == SANDBOX)).all()
    assert inbound == [True, True]
    statuses = connection.scalars(sa.select(OutboundMessage.status).where(OutboundMessage.to_phone == SANDBOX)).all()
    assert statuses and set(statuses) == {"simulated"}
    # The reply is on the simulated phone's screen, labelled as not sent.
    reply = connection.scalars(
        sa.select(OutboundMessage.text).where(OutboundMessage.to_phone == SANDBOX).order_by(OutboundMessage.id)
    ).all()[-1]
    page = response.get_data(as_text=True).replace("&#39;", "'")
    assert reply in page and "simulated (not sent)" in page
    # A drain never hands them to the gateway.
    printed = io.StringIO()
    drain_once(db, ConsoleGateway(printed))
    assert SANDBOX not in printed.getvalue()
    assert set(connection.scalars(sa.select(OutboundMessage.status).where(OutboundMessage.to_phone == SANDBOX))) == {
        "simulated"
    }
    # Analytics: the simulated contact, its messages and subscription are not there.
    people = load_people(connection)
    assert contact.id not in set(people["farmer"])
    events = load_engagement(connection)
    assert contact.id not in set(events["inbound"]["farmer"].dropna()) and contact.id not in set(
        events["subscriptions"]["farmer"]
    )
    assert contact.id not in set(events["outbound"]["farmer"].dropna())


def test_a_simulated_sale_is_not_a_farmers_sale(app, operator, connection) -> None:
    _sms(operator, SANDBOX, "PRICE MAIZE")
    # Registered as the USSD registration would (name and home market).
    nakuru = connection.scalar(sa.select(Market.id).where(Market.code == "nakuru"))
    connection.execute(sa.update(Contact).where(Contact.phone == SANDBOX).values(home_market_id=nakuru))
    _sms(operator, SANDBOX, "SOLD 2 BAG90 MAIZE 4000 NAKURU")
    contact_id = connection.scalar(sa.select(Contact.id).where(Contact.phone == SANDBOX))
    assert (
        connection.scalar(sa.select(sa.func.count()).select_from(SaleReport).where(SaleReport.contact_id == contact_id))
        == 1
    )
    assert contact_id not in set(load_sales(connection)["farmer"])
    assert len(load_sales(connection)) > 0


def test_a_real_number_needs_the_choice_and_its_confirmation(operator, connection) -> None:
    before = connection.scalar(
        sa.select(sa.func.count()).select_from(InboundMessage).where(InboundMessage.from_phone == REAL_FARMER)
    )
    for ticks in ({}, {"as_real": "y"}, {"confirm_real": "y"}):
        refused = _sms(operator, REAL_FARMER, "STOP", **ticks)
        assert "may be a real farmer" in refused.get_data(as_text=True)
    assert connection.scalar(sa.select(Contact.consent).where(Contact.phone == REAL_FARMER)) != "withdrawn"
    assert (
        connection.scalar(
            sa.select(sa.func.count()).select_from(InboundMessage).where(InboundMessage.from_phone == REAL_FARMER)
        )
        == before
    )
    dial = post(operator, "/admin/simulator/ussd", {"phone": REAL_FARMER, "dial": "Dial"}, page="/admin/simulator")
    assert "may be a real farmer" in dial.get_data(as_text=True)
    played = _sms(operator, REAL_FARMER, "PRICE MAIZE", as_real="y", confirm_real="y")
    assert 'id="real-contact"' in played.get_data(as_text=True)
    inbound = connection.execute(
        sa.select(InboundMessage).where(InboundMessage.from_phone == REAL_FARMER).order_by(InboundMessage.id.desc())
    ).first()
    assert inbound is not None and not inbound.simulated
    assert (
        connection.scalar(
            sa.select(OutboundMessage.status).where(OutboundMessage.idempotency_key == f"reply:{inbound.id}")
        )
        == "queued"
    )
    audits = connection.scalars(
        sa.select(AuditEntry.after).where(AuditEntry.action == "simulate").order_by(AuditEntry.id)
    ).all()
    assert audits[-1]["real_contact"] is True


def test_a_simulated_ussd_session_works_on_the_sandbox_contact(operator, connection) -> None:
    dial = post(operator, "/admin/simulator/ussd", {"phone": SANDBOX, "dial": "Dial"}, page="/admin/simulator")
    assert dial.status_code == 200 and "may be a real farmer" not in dial.get_data(as_text=True)
    assert connection.scalar(sa.select(Contact.simulated).where(Contact.phone == SANDBOX)) is True
    audits = connection.scalars(
        sa.select(AuditEntry.after).where(AuditEntry.action == "simulate").order_by(AuditEntry.id)
    ).all()
    assert audits[-1]["real_contact"] is False
