"""The right to be forgotten: ``smsgw contacts forget PHONE`` removes a person's number,
name, village and words from every table, and keeps the statistics (sales, prices, order
totals) on the anonymised contact. Audited.
"""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from smsgw.cli import main
from smsgw.db import Base, Database, utcnow
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways.console import ConsoleGateway
from smsgw.messaging.outbox import enqueue
from smsgw.models import (
    AuditEntry,
    Commitment,
    Commodity,
    Contact,
    GroupOrder,
    Membership,
    OutboundMessage,
    PriceObservation,
    ProducerGroup,
    SaleReport,
    Subscription,
    Unit,
)
from smsgw.services import orders
from smsgw.services.privacy import forget_contact, placeholder_phone
from tests.support.databases import fresh_database

PHONE = "+254711777888"
NAME, VILLAGE = "Nyokabi Chelangat", "Kiptangwanyi"
TRACES = ["711777888", "Nyokabi", "Chelangat", VILLAGE]


def _ussd(client, session_id: str, inputs: list[str]) -> str:
    body = ""
    for n in range(len(inputs) + 1):
        body = client.post(
            "/at/ussd", data={"sessionId": session_id, "phoneNumber": PHONE, "text": "*".join(inputs[:n])}
        ).get_data(as_text=True)
    return body


def _sms(client, text: str, gateway_id: str) -> None:
    assert (
        client.post("/at/sms", data={"from": PHONE, "to": "22384", "text": text, "id": gateway_id}).status_code == 200
    )


def _a_person_with_a_history(client, session) -> Contact:
    """A farmer who registered by USSD, reported sales, subscribed, joined an order, got SMS."""
    # English, report a sale -> name, home market, then maize, 90 kg bag, 10, 4300, trader, confirm.
    end = _ussd(client, "priv-1", ["1", "4", NAME, "4", "1", "1", "10", "1", "4300", "1", "1"])
    assert end.startswith("END Thank you"), end
    _ussd(client, "priv-2", ["1", "1", "2"])  # dropped mid-flow: a resumable session
    _sms(client, "SOLD 5bag90 maize 4400", "priv-sms-1")
    _sms(client, "SUB MAIZE NAKURU", "priv-sms-2")
    _sms(client, f"HELP this is {NAME} from {VILLAGE}", "priv-sms-3")
    contact = session.scalar(sa.select(Contact).where(Contact.phone == PHONE))
    contact.village = VILLAGE
    group = session.scalar(sa.select(ProducerGroup).where(ProducerGroup.code == "ngata-farmers"))
    session.add(Membership(group_id=group.id, contact_id=contact.id, role="member"))
    leader = session.scalar(sa.select(Contact).where(Contact.phone == "+254700000001"))
    maize = session.scalar(sa.select(Commodity).where(Commodity.code == "maize"))
    bag = session.scalar(sa.select(Unit).where(Unit.code == "bag90"))
    session.flush()
    order = orders.open_order(
        session,
        leader,
        group,
        kind="sell",
        commodity=maize,
        target_quantity=Decimal(100),
        unit=bag,
        price=Decimal(4300),
        deadline=utcnow() + dt.timedelta(days=2),
    )
    orders.commit(session, order.id, contact, Decimal(12), now=utcnow(), event_key="priv")
    # A reply that went out and came back delivered, and a bulletin still waiting.
    reply = session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.to_phone == PHONE, OutboundMessage.purpose == "reply")
    ).first()
    reply.status, reply.gateway_message_id, reply.sent_at = "sent", "ATXid_priv", utcnow()
    session.flush()
    assert (
        client.post("/at/delivery", data={"id": "ATXid_priv", "status": "Success", "phoneNumber": PHONE}).status_code
        == 200
    )
    enqueue(
        session, to=PHONE, text="Maize Nakuru 4,300", purpose="bulletin", key="priv:bulletin", contact_id=contact.id
    )
    # An operator's edit, as the admin audits it.
    session.add(
        AuditEntry(
            actor="ops@example.org",
            action="update",
            entity="contact",
            entity_id=str(contact.id),
            before={"name": "N. Chelangat", "phone": PHONE},
            after={"name": NAME, "village": VILLAGE},
        )
    )
    session.commit()
    return contact


def _traces(connection: sa.Connection) -> list[tuple[str, str, str]]:
    """(table, column, value) of every stored text that still names the person."""
    found = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, (sa.String, sa.Text, sa.JSON))]
        if not columns:
            continue
        for row in connection.execute(sa.select(*columns)):
            for column, value in zip(columns, row, strict=True):
                text = str(value)
                if any(trace in text for trace in TRACES):
                    found.append((table.name, column.name, text[:80]))
    return found


def _statistics(session, contact_id: int, order_id: int) -> tuple:
    sales = session.execute(
        sa.select(sa.func.count(SaleReport.id), sa.func.sum(SaleReport.quantity), sa.func.sum(SaleReport.price)).where(
            SaleReport.contact_id == contact_id
        )
    ).one()
    order = session.get(GroupOrder, order_id)
    prices = session.scalar(sa.select(sa.func.count(PriceObservation.id)))
    commitments = session.scalar(
        sa.select(sa.func.sum(Commitment.order_quantity)).where(Commitment.contact_id == contact_id)
    )
    return tuple(sales), order.committed_total, prices, commitments


def test_forgetting_a_contact_leaves_no_trace_and_keeps_the_statistics(client, session, connection, db) -> None:
    contact = _a_person_with_a_history(client, session)
    order_id = session.scalar(sa.select(Commitment.order_id).where(Commitment.contact_id == contact.id))
    before = _statistics(session, contact.id, order_id)
    assert before[0][0] == 2 and _traces(connection)  # two sales; the person is all over the tables

    result = forget_contact(session, PHONE, actor="cli")
    session.commit()

    assert _traces(connection) == []
    session.expire_all()
    forgotten = session.get(Contact, contact.id)
    assert forgotten.phone == placeholder_phone(contact.id) and forgotten.phone.startswith("+000")
    assert (forgotten.name, forgotten.village, forgotten.consent) == ("", "", "withdrawn")
    assert not session.scalars(sa.select(Subscription).where(Subscription.contact_id == contact.id)).all()
    assert not session.scalars(sa.select(Membership).where(Membership.contact_id == contact.id)).all()
    assert _statistics(session, contact.id, order_id) == before
    assert result.counts["inbound"] == 3 and result.counts["cancelled"] >= 1 and result.counts["ussd_sessions"] == 2
    entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "forget"))
    assert (entry.entity, entry.entity_id, entry.before) == ("contact", str(contact.id), {"phone": "+254*******88"})
    # What was waiting for them is never sent.
    printed = io.StringIO()
    while drain_once(db, ConsoleGateway(printed)).claimed:
        pass
    assert "+000" not in printed.getvalue() and "711777888" not in printed.getvalue()
    # Forgetting again finds nothing; the same number writing again is a new person.
    assert not forget_contact(session, PHONE).found
    _sms(client, "SUB MAIZE NAKURU", "priv-sms-4")
    again = session.scalar(sa.select(Contact).where(Contact.phone == PHONE))
    assert again is not None and again.id != contact.id


def test_an_unknown_senders_messages_are_scrubbed_too(client, session, connection) -> None:
    stranger = "+254722000111"
    client.post("/at/sms", data={"from": stranger, "text": "my number is 0722000111", "id": "priv-x"})
    session.execute(sa.delete(Contact).where(Contact.phone == stranger))  # never became a contact
    result = forget_contact(session, stranger)
    session.commit()
    assert result.found and result.contact_id is None
    assert not [row for row in _traces(connection) if "722000111" in row[2]]


@pytest.fixture()
def committed_url(tmp_path, monkeypatch) -> str:
    """A database of its own for the command line, which commits for real."""
    with fresh_database(tmp_path, "sqlite") as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url


def test_the_command_forgets_after_asking(committed_url) -> None:
    farmer = "+254700000002"  # a demo farmer with sales, alerts and a group
    db = Database(committed_url)
    try:
        with db.session() as session:
            contact_id = session.scalar(sa.select(Contact.id).where(Contact.phone == farmer))
            sales = session.scalar(sa.select(sa.func.count(SaleReport.id)).where(SaleReport.contact_id == contact_id))
        runner = CliRunner()
        refused = runner.invoke(main, ["contacts", "forget", "0700 000002"], input="n\n")
        assert refused.exit_code == 1 and "Aborted" in refused.output
        done = runner.invoke(main, ["contacts", "forget", "0700 000002"], input="y\n")
        assert done.exit_code == 0, done.output
        assert "+254*******02 forgotten" in done.output and placeholder_phone(contact_id) in done.output
        assert farmer not in done.output
        again = runner.invoke(main, ["contacts", "forget", "--yes", farmer])
        assert again.exit_code == 0 and "nothing is stored" in again.output
        bad = runner.invoke(main, ["contacts", "forget", "--yes", "12"])
        assert bad.exit_code != 0 and "Traceback" not in bad.output
        with db.session() as session:
            row = session.get(Contact, contact_id)
            assert (row.phone, row.consent) == (placeholder_phone(contact_id), "withdrawn")
            assert (
                session.scalar(sa.select(sa.func.count(SaleReport.id)).where(SaleReport.contact_id == contact_id))
                == sales
                > 0
            )
            assert session.scalar(sa.select(sa.func.count(AuditEntry.id)).where(AuditEntry.action == "forget")) == 1
    finally:
        db.dispose()
