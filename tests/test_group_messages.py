"""A leader's message to the group by SMS: MSG <text> reaches every other member once."""
from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from smsgw.models import Contact, GroupMessage, InboundMessage, OutboundMessage, ProducerGroup
from smsgw.services.privacy import forget_contact

# The admin fixtures (users, as_role, operator) come from this plugin module.
pytest_plugins = ["tests.test_admin_fixtures"]

LEADER, MEMBER = "+254700000001", "+254700000002"
GROUP = "Ngata Farmers Group"
OTHERS = ["+254700000002", "+254700000003", "+254700000004", "+254700000005"]
_ids = itertools.count()


def send(client, phone: str, text: str, gateway_id: str | None = None) -> str:
    """Post one inbound SMS as AT does; its AT id."""
    gateway_id = gateway_id or f"at-group-{next(_ids)}"
    response = client.post("/at/sms", data={"from": phone, "to": "22384", "text": text, "id": gateway_id})
    assert response.status_code == 200
    return gateway_id


def reply(session, phone: str) -> str:
    return session.scalars(
        sa.select(OutboundMessage.text)
        .where(OutboundMessage.to_phone == phone, OutboundMessage.purpose == "reply")
        .order_by(OutboundMessage.id.desc())
    ).first()


def copies(session) -> list[tuple[str, str]]:
    rows = session.execute(
        sa.select(OutboundMessage.to_phone, OutboundMessage.text)
        .where(OutboundMessage.idempotency_key.like("group:%"))
    )
    return sorted((phone, text) for phone, text in rows)


def test_a_leaders_message_reaches_every_other_member_once(client, session) -> None:
    at_id = send(client, LEADER, "Hello, MSG Truck comes Thursday 8am at Ngata school. Bring bags!")
    assert reply(session, LEADER) == f"Sent to {GROUP}. Members reached: 4."
    text = f"{GROUP}: Truck comes Thursday 8am at Ngata school. Bring bags!"
    assert copies(session) == [(phone, text) for phone in OTHERS]
    stored = session.scalars(sa.select(GroupMessage)).one()
    assert (stored.body, stored.recipients) == ("Truck comes Thursday 8am at Ngata school. Bring bags!", 4)
    send(client, LEADER, "MSG Truck comes Thursday 8am at Ngata school. Bring bags!", at_id)  # AT retries
    assert len(copies(session)) == 4 and session.scalar(sa.select(sa.func.count(GroupMessage.id))) == 1


def test_a_stop_inside_the_message_is_the_leaders_words_not_a_stop(client, session) -> None:
    send(client, LEADER, "msg The truck will not stop at the market, wait at the school")
    leader = session.scalar(sa.select(Contact).where(Contact.phone == LEADER))
    assert leader.consent == "granted"
    assert len(copies(session)) == 4


def test_anyone_elses_stop_in_a_message_is_a_stop(client, session) -> None:
    send(client, MEMBER, "msg stop sending me these")
    member = session.scalar(sa.select(Contact).where(Contact.phone == MEMBER))
    assert member.consent == "withdrawn" and reply(session, MEMBER).startswith("Hutapokea")
    assert copies(session) == []


def test_members_who_opted_out_are_left_out(client, session) -> None:
    send(client, "+254700000003", "STOP")
    send(client, LEADER, "MSG Meeting on Friday")
    assert [phone for phone, _ in copies(session)] == ["+254700000002", "+254700000004", "+254700000005"]
    assert reply(session, LEADER).endswith("Members reached: 3.")


@pytest.mark.parametrize(
    ("phone", "text", "expected"),
    [
        (MEMBER, "UJUMBE Mkutano kesho", "Ni kiongozi wa kikundi tu anayeweza kufanya hivyo."),
        (LEADER, "MSG", "Format: MSG <your message to the group>"),
        (LEADER, "MSG " + "A long message. " * 12, "Too long for one SMS to each member: at most 139 characters."),
    ],
)
def test_a_refused_message_says_why_and_sends_nothing(client, session, phone, text, expected) -> None:
    send(client, phone, text)
    assert reply(session, phone) == expected
    assert copies(session) == [] and session.scalar(sa.select(sa.func.count(GroupMessage.id))) == 0


def test_a_group_gets_at_most_three_messages_a_day(client, session) -> None:
    for n in range(4):
        send(client, LEADER, f"MSG Update {n}")
    assert reply(session, LEADER) == "Your group has had 3 messages today. Please send again tomorrow."
    assert len(copies(session)) == 3 * 4


def test_a_senegalese_leader_writes_in_wolof(client, session) -> None:
    send(client, "+221770000001", "BATAAXAL Ndaje ci altine ci 10 waxtu")
    assert (
        reply(session, "+221770000001") == "Yonnee nañu ko GIE Ndiaffate Arachide. Way-bokk yi ko jot: 3."
    )  # nañu, issue 17
    assert {text for _, text in copies(session)} == {"GIE Ndiaffate Arachide: Ndaje ci altine ci 10 waxtu"}


def test_forgetting_a_leader_removes_their_words_everywhere(client, session) -> None:
    send(client, LEADER, "MSG Call me on 0722 000 001 about the truck")
    send(client, "+254700000006", "MSG Potatoes collected on Monday")  # another group's leader
    forget_contact(session, LEADER)
    assert sorted(session.scalars(sa.select(GroupMessage.body)).all()) == ["", "Potatoes collected on Monday"]
    rows = session.execute(sa.select(OutboundMessage.text, OutboundMessage.status, OutboundMessage.last_error)
                           .where(OutboundMessage.idempotency_key.like("group:%"))).all()
    mine = [row for row in rows if not row.text.startswith("Njabini")]
    assert len(mine) == 4 and {tuple(row) for row in mine} == {("", "failed", "forgotten on request")}
    assert [row.status for row in rows if row.text.startswith("Njabini")] == ["queued"] * 3
    assert not session.scalars(sa.select(InboundMessage).where(InboundMessage.text.contains("truck"))).all()


def test_operators_see_the_leaders_messages_on_the_group_page(client, session, operator) -> None:
    send(client, LEADER, "MSG <b>Meet</b> on Friday")
    group = session.scalar(sa.select(ProducerGroup).where(ProducerGroup.name == GROUP))
    page = operator.get(f"/admin/groups/{group.id}").get_data(as_text=True)
    assert "&lt;b&gt;Meet&lt;/b&gt; on Friday" in page and "<b>Meet" not in page
