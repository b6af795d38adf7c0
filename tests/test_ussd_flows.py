"""USSD flows end to end through POST /at/ussd: effects happen once, data is right."""

from __future__ import annotations

import decimal
import itertools

import pytest
import sqlalchemy as sa

from smsgw.models import (
    Commitment,
    Commodity,
    Contact,
    GroupOrder,
    OutboundMessage,
    PriceObservation,
    SaleReport,
    Subscription,
    UssdSession,
)

LEADER, MEMBER = "+254700000001", "+254700000002"
_ids = itertools.count()


class Phone:
    """One handset playing one session against the app."""

    def __init__(self, client, phone: str) -> None:
        self.client, self.phone = client, phone
        self.session_id = f"flow-{next(_ids)}"
        self.inputs: list[str] = []

    def dial(self, *inputs: str) -> str:
        """Send the next inputs one hop at a time; return the last screen."""
        body = self._post()
        for value in inputs:
            self.inputs.append(value)
            body = self._post()
        return body

    def repeat(self) -> str:
        """AT repeating the last request."""
        return self._post()

    def _post(self) -> str:
        response = self.client.post(
            "/at/ussd",
            data={
                "sessionId": self.session_id,
                "phoneNumber": self.phone,
                "text": "*".join(self.inputs),
            },
        )
        assert response.status_code == 200
        return response.get_data(as_text=True)


def _menu_number(body: str, label: str) -> str:
    for line in body.splitlines():
        number, _, text = line.removeprefix("CON ").partition(" ")
        if label in text:
            return number
    raise AssertionError(f"{label!r} not on screen: {body}")


def test_price_shows_trend_and_best_market_then_subscribes_once(client, session) -> None:
    phone = Phone(client, LEADER)
    screen = phone.dial("1", "1", "2")  # prices -> maize -> second market
    assert "Maize" in screen and "KSh" in screen and "in a week" in screen
    end = phone.dial("1")
    assert end.startswith("END Done")
    phone.repeat()
    contact = session.scalar(sa.select(Contact).where(Contact.phone == LEADER))
    subs = session.scalars(
        sa.select(Subscription).where(Subscription.contact_id == contact.id)
    ).all()
    assert len(subs) == 3  # two from the demo content, one added once
    # The look-up is kept on the session: the analytics count sales it informed.
    ussd = session.scalar(sa.select(UssdSession).where(UssdSession.session_id == phone.session_id))
    assert ussd.state[UssdSession.PRICES_VIEWED] == ["maize"]


def test_a_price_screen_with_no_price_records_no_look_up(client, session) -> None:
    tomatoes = session.scalar(sa.select(Commodity).where(Commodity.code == "tomatoes"))
    session.execute(
        sa.update(PriceObservation)
        .where(PriceObservation.commodity_id == tomatoes.id)
        .values(status="rejected")
    )
    phone = Phone(client, LEADER)
    crops = phone.dial("1")
    screen = phone.dial(_menu_number(crops, "Tomatoes"), "1")
    assert screen.startswith("CON No price yet for Tomatoes")
    ussd = session.scalar(sa.select(UssdSession).where(UssdSession.session_id == phone.session_id))
    assert UssdSession.PRICES_VIEWED not in ussd.state


def test_sale_report_is_stored_once_with_per_kg_price(client, session) -> None:
    phone = Phone(client, LEADER)
    summary = phone.dial(
        "4", "1", "1", "10", "1", "4300", "1"
    )  # sale -> maize -> 90kg bag -> 10 -> today -> 4300 -> trader
    assert "Sold 10 bags of 90 kg of maize at KSh 4,300 each." in summary, summary
    end = phone.dial("1")
    assert end.startswith("END Thank you"), end
    phone.repeat()
    reports = session.scalars(sa.select(SaleReport).where(SaleReport.channel == "ussd")).all()
    assert len(reports) == 1
    report = reports[0]
    assert (
        report.quantity == 10 and report.price == 4300 and report.buyer_type == "farm_gate_trader"
    )
    assert abs(report.price_per_base - decimal.Decimal(4300) / 90) < decimal.Decimal("0.001")


def test_implausible_price_asks_before_storing(client, session) -> None:
    phone = Phone(client, LEADER)
    screen = phone.dial("4", "1", "1", "10", "1", "430000")
    assert "Is it right" in screen
    screen = phone.dial("2")
    assert "Price received" in screen
    phone.dial("4300", "2")
    assert phone.dial("1").startswith("END Thank you")


def test_numbers_screens_take_zero_as_a_value(client) -> None:
    phone = Phone(client, LEADER)
    screen = phone.dial("4", "1", "1", "0")
    assert "number above 0" in screen and screen.startswith("CON ")


def test_back_and_home_work_at_depth(client) -> None:
    phone = Phone(client, LEADER)
    market_list = phone.dial("1", "1")
    assert phone.dial("2", "0") == market_list
    home = phone.dial("00")
    assert "Prices" in home and "Buyer standards" in home


def test_leader_opens_member_commits_leader_closes(client, session) -> None:
    leader = Phone(client, LEADER)
    leader_tools = _menu_number(leader.dial(), "Leader")
    leader.dial(
        leader_tools, "1", "1", "1", "200", "4300", "14"
    )  # open -> sell -> maize -> 200 -> 4300 -> 14 days
    end = leader.dial("1")
    assert end.startswith("END Order"), end
    order = session.scalars(sa.select(GroupOrder).order_by(GroupOrder.id.desc())).first()
    assert order.target_quantity == 200 and order.status == "open"

    member = Phone(client, MEMBER)
    listing = member.dial("3")  # Group orders, in the member's own language (Swahili)
    number = _menu_number(listing, f"#{order.id}")
    confirm = member.dial(number, "1", "15")
    assert f"Ahidi magunia 15 ya kilo 90 kwa oda {order.id}?" in confirm, confirm
    end = member.dial("1")
    assert end == f"END Tayari. Jumla ya kikundi kwa oda {order.id} sasa ni 15 kati ya magunia 200 ya kilo 90. " \
        "Utapokea risiti kwa SMS.", end
    member.repeat()
    session.refresh(order)
    assert order.committed_total == 15
    assert (
        session.scalar(
            sa.select(sa.func.count(Commitment.id)).where(Commitment.order_id == order.id)
        )
        == 1
    )

    closer = Phone(client, LEADER)
    screen = closer.dial(leader_tools, "2")
    closer.dial(_menu_number(screen, f"#{order.id}"), "2")
    assert closer.dial("1").startswith("END Order")
    session.refresh(order)
    assert order.status == "closed"
    receipts = session.scalars(
        sa.select(OutboundMessage).where(
            OutboundMessage.idempotency_key.like(f"order:{order.id}:%")
        )
    ).all()
    closing = [
        m
        for m in receipts
        if m.to_phone == MEMBER and m.idempotency_key.startswith(f"order:{order.id}:closed:")
    ]
    assert len(closing) == 1 and "15" in closing[0].text, [m.text for m in receipts]
    assert (
        f"Oda {order.id} imefungwa: jumla ya kikundi magunia 15 ya kilo 90 ya mahindi. "
        "Sehemu yako: magunia 15 ya kilo 90." in closing[0].text
    ), closing[0].text
    [receipt] = [m for m in receipts if m.idempotency_key.startswith(f"order:{order.id}:commit:")]
    assert receipt.text == (
        f"Oda {order.id}: umeahidi magunia 15 ya kilo 90 ya mahindi. "
        "Jumla ya kikundi 15 kati ya magunia 200 ya kilo 90."
    )


def test_dropped_sale_report_resumes(client, session) -> None:
    first = Phone(client, LEADER)
    first.dial("4", "1", "1", "12", "1")  # dropped on the price screen
    client.post(
        "/at/ussd/events",
        data={"sessionId": first.session_id, "status": "Incomplete", "phoneNumber": LEADER},
    )
    second = Phone(client, LEADER)
    offer = second.dial()
    assert "Continue" in offer
    resumed = second.dial("1")
    assert "Price received" in resumed
    assert second.dial("4300", "1", "1").startswith("END Thank you")
    again = Phone(client, LEADER)
    assert "Continue" not in again.dial()  # offered once, and the finished flow is not offered


@pytest.mark.parametrize(
    "text",
    [
        "*",
        "1**",
        "**********",
        "abc",
        "1*" * 250,
        "9*9*9*9",
        "\x00\x01",
        "1*2*3*4*5*6*7*8*9*0*00*1",
    ],
)
def test_garbage_never_breaks(client, text: str) -> None:
    response = client.post(
        "/at/ussd", data={"sessionId": f"junk-{next(_ids)}", "phoneNumber": LEADER, "text": text}
    )
    assert response.status_code == 200
    assert response.get_data(as_text=True)[:4] in ("CON ", "END ")


def test_unregistered_caller_registers_on_the_spot(client, session) -> None:
    phone = Phone(client, "+254711000999")
    phone.dial("1")  # English
    screen = phone.dial("4")  # report a sale needs a name and home market
    assert "Enter your name" in screen
    screen = phone.dial("Achieng Otieno")
    assert "home market" in screen
    screen = phone.dial("2")
    assert "Choose a crop" in screen
    contact = session.scalar(sa.select(Contact).where(Contact.phone == "+254711000999"))
    assert contact.name == "Achieng Otieno" and contact.home_market_id is not None
    assert (
        session.scalar(
            sa.select(UssdSession.hops).where(UssdSession.session_id == phone.session_id)
        )
        >= 4
    )
