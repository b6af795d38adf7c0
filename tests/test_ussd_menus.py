"""Every reachable USSD screen, in every language, keeps AT's rules.

A breadth-first walk over the menu tree with the demo content, for a farmer, a group
leader and a first-time caller in each language: every answer is 200 text/plain,
starts with CON or END, shows at most 160 GSM-7 characters, and a non-English screen
shows no English sentence that has a translation.
"""

from __future__ import annotations

import itertools
import re
from collections import deque

import pytest
import sqlalchemy as sa

from smsgw.config import LANGUAGES
from smsgw.messaging.encoding import is_gsm7
from smsgw.models import Commodity, Contact, Market, Subscription
from tests.catalog_strings import english_fragments

INPUTS = [str(n) for n in range(1, 10)] + ["0", "00", "x"]
MAX_SCREENS = 260
CALLERS = {
    "farmer": "+254700000002",
    "leader": "+254700000001",
    "senegal": "+221770000002",
}


def _walk(client, phone: str, reset) -> dict[str, str]:
    """Distinct screens reachable from the first hop, keyed by the path that reached them."""
    counter = itertools.count()
    seen: dict[str, str] = {}
    bodies: set[str] = set()
    queue = deque([""])
    while queue and len(seen) < MAX_SCREENS:
        path = queue.popleft()
        response = client.post(
            "/at/ussd",
            data={
                "sessionId": f"bfs-{next(counter)}",
                "phoneNumber": phone,
                "serviceCode": "*384#",
                "text": path,
            },
        )
        reset()  # the walk may change the caller's language or consent: put them back
        assert response.status_code == 200, path
        assert response.mimetype == "text/plain", path
        body = response.get_data(as_text=True)
        assert body[:4] in ("CON ", "END "), (path, body)
        seen[path] = body
        if body.startswith("CON ") and body not in bodies:
            bodies.add(body)
            queue.extend(f"{path}*{value}" if path else value for value in INPUTS)
    return seen


@pytest.fixture()
def bfs_app(app, session):
    """No resume offers: every walked path is a fresh session of the same phone."""
    app.config["USSD_RESUME_MINUTES"] = 0
    return app


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("who", sorted(CALLERS))
def test_every_screen_fits_and_is_translated(bfs_app, client, session, who: str, lang: str) -> None:
    def reset() -> None:
        session.execute(
            sa.update(Contact)
            .where(Contact.phone == CALLERS[who])
            .values(language=lang, language_chosen=True, consent="granted")
        )

    reset()
    screens = _walk(client, CALLERS[who], reset)
    assert len(screens) > 40
    english = english_fragments(lang)
    for path, body in screens.items():
        shown = body[4:]
        assert len(shown) <= 160, (path, len(shown), shown)
        assert is_gsm7(shown), (path, shown)
        # Choosing another language on the language screen (6) rightly changes the language.
        if lang != "en" and not path.startswith("6*"):
            leaked = [fragment for fragment in english if fragment in shown]
            assert not leaked, (path, shown, leaked)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_screen_fits_for_a_farmer_with_twelve_alerts(bfs_app, client, session, lang: str) -> None:
    """Dynamic lists at their longest: twelve alerts (more than any page holds) in every language."""
    phone = CALLERS["farmer"]
    contact = session.scalar(sa.select(Contact).where(Contact.phone == phone))
    pairs = session.execute(sa.select(Commodity.id, Market.id).join(Market, sa.true()).order_by(Commodity.id, Market.id)
                            .limit(12)).all()
    assert len(pairs) == 12

    def reset() -> None:
        # The walk may remove alerts or change the language: put all twelve back each time.
        session.execute(sa.update(Contact).where(Contact.id == contact.id)
                        .values(language=lang, language_chosen=True, consent="granted"))
        session.execute(sa.delete(Subscription).where(Subscription.contact_id == contact.id))
        session.execute(sa.insert(Subscription), [
            {"contact_id": contact.id, "commodity_id": commodity_id, "market_id": market_id}
            for commodity_id, market_id in pairs
        ])

    reset()
    screens = _walk(client, phone, reset)
    assert len(screens) > 40
    for path, body in screens.items():
        shown = body[4:]
        assert len(shown) <= 160, (path, len(shown), shown)
        assert is_gsm7(shown), (path, shown)


def test_first_time_caller_sees_language_choice_first(client) -> None:
    body = client.post(
        "/at/ussd", data={"sessionId": "ft", "phoneNumber": "+254711223344", "text": ""}
    ).get_data(as_text=True)
    assert re.search(r"1 English\n2 Francais\n3 Kiswahili\n4 Wolof", body)
