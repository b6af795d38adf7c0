"""POST /at/ussd and /at/ussd/events as Africa's Talking calls them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smsgw.models import Contact, UssdSession
from smsgw.web.database import get_db

FIRST_HOP = {
    "sessionId": "s1",
    "phoneNumber": "+254700000001",
    "serviceCode": "*384*1#",
    "networkCode": "63902",
    "text": "",
}


def test_first_hop_answers_con_as_plain_text(client) -> None:
    response = client.post("/at/ussd", data=FIRST_HOP)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True).startswith("CON ")


def test_first_time_caller_chooses_language_then_sees_menu(app, client) -> None:
    hop = {**FIRST_HOP, "phoneNumber": "+254700000077", "sessionId": "new-1"}
    first = client.post("/at/ussd", data=hop).get_data(as_text=True)
    assert "Kiswahili" in first and "Wolof" in first
    for _ in range(2):  # AT may repeat a hop: the choice is stored once
        menu = client.post("/at/ussd", data={**hop, "text": "3"}).get_data(as_text=True)
        assert menu.startswith("CON 1 ")
    with app.app_context(), get_db().session() as session:
        contacts = session.scalars(
            sa.select(Contact).where(Contact.phone == "+254700000077")
        ).all()
        assert [(c.language, c.language_chosen) for c in contacts] == [("sw", True)]


@pytest.mark.parametrize(
    "fields",
    [
        {**FIRST_HOP, "phoneNumber": "not-a-phone"},
        {**FIRST_HOP, "sessionId": ""},
        {"text": "1"},
    ],
)
def test_bad_requests_end_politely(client, fields) -> None:
    response = client.post("/at/ussd", data=fields)
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("END ")


def test_token_is_required_when_set(app, client) -> None:
    app.config["WEBHOOK_TOKEN"] = "secret-token"
    assert client.post("/at/ussd", data=FIRST_HOP).status_code == 403
    assert client.post("/at/ussd?token=wrong", data=FIRST_HOP).status_code == 403
    ok = client.post("/at/ussd?token=secret-token", data=FIRST_HOP)
    assert ok.status_code == 200 and ok.get_data(as_text=True).startswith("CON ")


def test_end_event_is_stored_even_for_unknown_session(app, client) -> None:
    response = client.post(
        "/at/ussd/events",
        data={
            "sessionId": "ghost",
            "status": "Incomplete",
            "phoneNumber": "+254700000001",
            "durationInMillis": "4200",
            "input": "1*2",
        },
    )
    assert response.status_code == 200
    with app.app_context(), get_db().session() as session:
        row = session.scalar(sa.select(UssdSession).where(UssdSession.session_id == "ghost"))
        assert row.status == "Incomplete" and row.duration_ms == 4200


def test_a_failing_screen_ends_with_an_apology_in_the_callers_language(client, monkeypatch, caplog) -> None:
    from smsgw.conversations.ussd.engine import SCREENS

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(SCREENS["main"], "render", broken)
    response = client.post("/at/ussd", data={**FIRST_HOP, "phoneNumber": "+254700000002", "sessionId": "boom-1"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.startswith("END ")
    assert "Samahani" in body  # the Swahili apology for a Swahili speaker
    assert any("boom-1" in record.getMessage() for record in caplog.records)
