"""Past sales with their day: SOLD ... <day> by SMS, and the day step of the USSD sale report (issue 19)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from smsgw.config import LANGUAGES
from smsgw.conversations.sms.parser import parse
from smsgw.db import utcnow
from smsgw.i18n import Text
from smsgw.messaging.encoding import is_gsm7
from smsgw.models import Contact, OutboundMessage, SaleReport
from smsgw.services import sales
from smsgw.services.sales import TypedDay
from tests.test_sms_parser import SHORTCODES, VOCAB

FARMER, SWAHILI, FRENCH = "+254700000001", "+254700000002", "+221770000002"
_ids = itertools.count()


# ---------------------------------------------------------------- parser: the day as written
DAYS = [
    ("SOLD 10BAG90 MAIZE 4300 12/11", TypedDay(12, 11)),
    ("SOLD 10BAG90 MAIZE 4300 12/11/2025", TypedDay(12, 11, 2025)),
    ("SOLD 10BAG90 MAIZE 4300 12/11/25", TypedDay(12, 11, 2025)),
    ("SOLD 10BAG90 MAIZE 4300 2026-11-12", TypedDay(12, 11, 2026)),
    ("SOLD 10BAG90 MAIZE 4300 12-11-2026", TypedDay(12, 11, 2026)),
    ("SOLD 10BAG90 MAIZE 4300 12.11", TypedDay(12, 11)),
    ("SOLD 10BAG90 MAIZE 4300 12.11.2026", TypedDay(12, 11, 2026)),
    ("SOLD 10BAG90 MAIZE 4300 12-11", TypedDay(12, 11)),
    ("sold 10 bags maize 4300 on 5/1", TypedDay(5, 1)),
    ("SOLD 12/11 10BAG90 MAIZE 4300", TypedDay(12, 11)),
    ("SOLD 10 bags maize 4 300 12.11", TypedDay(12, 11)),
    ("SOLD 10 90kg bags maize 4300 12-11", TypedDay(12, 11)),
    ("sold 10bag90 maize 4300 yesterday", TypedDay(days_ago=1)),
    ("NIMEUZA 10 gunia mahindi 4300 jana", TypedDay(days_ago=1)),
    ("NIMEUZA 10 gunia mahindi 4300 tarehe 12/11", TypedDay(12, 11)),
    ("VENDU 10 sacs90 mais 4300 hier", TypedDay(days_ago=1)),
    ("VENDU 10 sacs90 mais 4300 avant-hier", TypedDay(days_ago=2)),
    ("JAAY 10 saaku90 mboq 4300 démb", TypedDay(days_ago=1)),
]


@pytest.mark.parametrize(("text", "day"), DAYS, ids=[text for text, _ in DAYS])
def test_the_day_is_read_and_the_sale_is_unchanged(text: str, day: TypedDay) -> None:
    parsed = parse(text, VOCAB, SHORTCODES)
    assert (parsed.command, parsed.error, parsed.sold_on) == ("sold", None, day), parsed
    assert (parsed.quantity, parsed.price) == (Decimal(10), Decimal(4300)), parsed


@pytest.mark.parametrize(
    ("text", "price"),
    [
        ("SOLD 10 kg maize 43.50", Decimal("43.50")),  # two numbers: a decimal price, not 43 March
        ("SOLD 10 bags maize 4 300", Decimal(4300)),
        ("SOLD 10 bags maize 4300", Decimal(4300)),
        ("SOLD 10 bags maize 4300 today", Decimal(4300)),
    ],
)
def test_numbers_that_are_no_day_stay_numbers(text: str, price: Decimal) -> None:
    parsed = parse(text, VOCAB, SHORTCODES)
    assert (parsed.price, parsed.sold_on, parsed.error) == (price, None, None), parsed


# ---------------------------------------------------------------- service: which date is meant
TODAY = dt.date(2026, 11, 22)


@pytest.mark.parametrize(
    ("day", "month", "year", "today", "expected"),
    [
        (12, 11, None, TODAY, dt.date(2026, 11, 12)),
        (22, 11, None, TODAY, TODAY),
        (25, 12, None, dt.date(2026, 1, 2), dt.date(2025, 12, 25)),  # last year's, not next month's
        (29, 2, None, TODAY, dt.date(2024, 2, 29)),
        (12, 11, 2025, TODAY, dt.date(2025, 11, 12)),
    ],
)
def test_a_day_without_a_year_is_the_latest_one_not_in_the_future(day, month, year, today, expected) -> None:
    assert sales.sale_day(day, month, year, today) == expected


@pytest.mark.parametrize(("day", "month", "year"), [(31, 4, None), (12, 13, None), (0, 5, None), (29, 2, 2025)])
def test_a_day_that_does_not_exist_is_refused(day, month, year) -> None:
    with pytest.raises(sales.SaleError, match="bad_date"):
        sales.sale_day(day, month, year, TODAY)


# One reader of a typed day serves SMS, USSD and the survey import; each adds its own rule
# (SMS: "12.11" only last; USSD: keypad digits; import: a year).
@pytest.mark.parametrize(
    ("text", "keypad", "expected"),
    [
        ("2026-11-12", False, TypedDay(12, 11, 2026)),
        ("12/11", False, TypedDay(12, 11)),
        ("12.11.26", False, TypedDay(12, 11, 2026)),
        ("12-11-2026", False, TypedDay(12, 11, 2026)),
        ("5 1", False, TypedDay(5, 1)),
        ("2511", False, None),
        ("2511", True, TypedDay(25, 11)),
        ("251126", True, TypedDay(25, 11, 2026)),
        ("25112026", True, TypedDay(25, 11, 2026)),
        ("25/11.26", True, None),
        ("12/11/202", False, None),
        ("4300-12-11", False, None),
        ("12/11/0026", False, None),
        ("4300", True, TypedDay(43, 0)),
    ],
)
def test_one_reader_of_a_typed_day(text, keypad, expected) -> None:
    assert sales.read_day(text, keypad=keypad) == expected


def test_a_typed_day_becomes_a_date_on_the_day_it_is_read() -> None:
    assert TypedDay(days_ago=2).date(TODAY) == TODAY - dt.timedelta(days=2)
    assert TypedDay(12, 11, 2025).date(TODAY) == dt.date(2025, 11, 12)
    with pytest.raises(sales.SaleError, match="bad_date"):
        TypedDay(43, 0).date(TODAY)


def test_a_sale_day_is_neither_in_the_future_nor_beyond_the_limit() -> None:
    sales.check_sold_on(TODAY, TODAY)
    sales.check_sold_on(TODAY - sales.OLDEST_REPORTED_SALE, TODAY)
    with pytest.raises(sales.SaleError, match="future_date"):
        sales.check_sold_on(TODAY + dt.timedelta(days=1), TODAY)
    with pytest.raises(sales.SaleError, match="old_date"):
        sales.check_sold_on(TODAY - sales.OLDEST_REPORTED_SALE - dt.timedelta(days=1), TODAY)


# ---------------------------------------------------------------- SMS through the webhook
@pytest.fixture()
def today(settings) -> dt.date:
    """Today where the service is, as the handlers see it."""
    return utcnow().astimezone(ZoneInfo(settings["SMSGW_TIMEZONE"])).date()


def send(client, phone: str, text: str, sent: dt.datetime | None = None) -> None:
    """One inbound SMS as AT posts it, dated ``sent`` (default now) in AT's ``date`` field."""
    response = client.post("/at/sms", data={
        "from": phone, "to": "22384", "text": text, "date": (sent or utcnow()).strftime("%Y-%m-%d %H:%M:%S"),
        "id": f"sold-{next(_ids)}", "linkId": "",
    })
    assert response.status_code == 200


def last_reply(session, phone: str) -> str:
    return session.scalars(
        sa.select(OutboundMessage.text).where(OutboundMessage.to_phone == phone, OutboundMessage.purpose == "reply")
        .order_by(OutboundMessage.id.desc())
    ).first()


def sms_sales(session, phone: str) -> list[SaleReport]:
    return list(session.scalars(
        sa.select(SaleReport).join(Contact).where(Contact.phone == phone, SaleReport.channel == "sms")
    ))


FORMS = {
    "day/month": lambda day: f"{day.day}/{day.month}",
    "day.month": lambda day: f"{day.day}.{day.month}",
    "iso": lambda day: day.isoformat(),
    "day-month-year": lambda day: f"{day.day:02}-{day.month:02}-{day.year}",
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_past_sale_is_stored_on_its_day_and_the_receipt_says_so(client, session, today, form) -> None:
    day = today - dt.timedelta(days=3)
    send(client, FARMER, f"SOLD 10bag90 maize 4300 {FORMS[form](day)}")
    [sale] = sms_sales(session, FARMER)
    assert (sale.sold_on, sale.quantity, sale.price) == (day, 10, 4300)
    reply = last_reply(session, FARMER)
    assert reply.startswith("Thank you. Sale of ") and Text("en").full_date(day, today) in reply, reply


def test_yesterday_in_swahili(client, session, today) -> None:
    send(client, SWAHILI, "NIMEUZA 10 gunia mahindi 4300 jana")
    [sale] = sms_sales(session, SWAHILI)
    assert sale.sold_on == today - dt.timedelta(days=1)
    assert last_reply(session, SWAHILI).startswith("Asante. Mauzo ya ")


def test_without_a_day_the_sale_is_today(client, session, today) -> None:
    send(client, FARMER, "SOLD 10bag90 maize 4300")
    [sale] = sms_sales(session, FARMER)
    assert sale.sold_on == today
    assert last_reply(session, FARMER).startswith("Thank you. Sale recorded: ")


def test_a_late_sms_counts_from_the_day_it_was_sent(client, session, settings, today) -> None:
    # AT delivers an SMS sent two days ago (its retries, or ours while the database was
    # down): "yesterday" is the day before it was sent, and the receipt names that day.
    sent = utcnow() - dt.timedelta(days=2)
    sent_day = sent.astimezone(ZoneInfo(settings["SMSGW_TIMEZONE"])).date()
    send(client, FARMER, "SOLD 10bag90 maize 4300 yesterday", sent=sent)
    send(client, SWAHILI, "NIMEUZA 10 gunia mahindi 4300", sent=sent)
    assert [sale.sold_on for sale in sms_sales(session, FARMER)] == [sent_day - dt.timedelta(days=1)]
    assert [sale.sold_on for sale in sms_sales(session, SWAHILI)] == [sent_day]
    assert Text("en").full_date(sent_day - dt.timedelta(days=1), today) in last_reply(session, FARMER)
    assert last_reply(session, SWAHILI).startswith("Asante. Mauzo ya ")


@pytest.mark.parametrize("off", [dt.timedelta(days=3), -dt.timedelta(days=30), -dt.timedelta(days=2000)])
def test_a_date_from_a_wrong_clock_counts_as_the_day_the_sms_arrived(client, session, today, off) -> None:
    send(client, FARMER, "SOLD 10bag90 maize 4300", sent=utcnow() + off)
    assert [sale.sold_on for sale in sms_sales(session, FARMER)] == [today]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (lambda today: (today + dt.timedelta(days=2)).isoformat(), "is in the future"),
        (lambda today: f"{(today + dt.timedelta(days=40)):%d/%m/%Y}", "is in the future"),
        (lambda today: (today - dt.timedelta(days=400)).isoformat(), "is more than 366 days ago"),
        (lambda today: "31/02", "That date does not exist"),
        (lambda today: "12/13", "That date does not exist"),
    ],
    ids=["iso-future", "slash-future", "too-old", "31-february", "month-13"],
)
def test_a_day_no_sale_can_have_is_refused_and_nothing_is_stored(client, session, today, written, expected) -> None:
    send(client, FARMER, f"SOLD 10bag90 maize 4300 {written(today)}")
    assert sms_sales(session, FARMER) == []
    reply = last_reply(session, FARMER)
    assert expected in reply and len(reply) <= 160, reply


def test_the_refusal_is_in_the_farmers_language(client, session) -> None:
    send(client, FRENCH, "VENDU 2 sacs mil 28000 31/02")
    assert sms_sales(session, FRENCH) == []
    assert last_reply(session, FRENCH).startswith("Cette date n'existe pas.")


# ---------------------------------------------------------------- USSD: the day step
class Phone:
    """One USSD session, one hop per input."""

    def __init__(self, client, phone: str = FARMER) -> None:
        self.client, self.phone, self.inputs = client, phone, []
        self.session_id = f"sold-day-{next(_ids)}"

    def dial(self, *inputs: str) -> str:
        self.inputs.extend(inputs)
        response = self.client.post(
            "/at/ussd", data={"sessionId": self.session_id, "phoneNumber": self.phone, "text": "*".join(self.inputs)}
        )
        assert response.status_code == 200
        return response.get_data(as_text=True)


def ussd_sales(session) -> list[SaleReport]:
    return list(session.scalars(sa.select(SaleReport).where(SaleReport.channel == "ussd")))


def test_ussd_asks_the_day_and_stores_yesterdays_sale(client, session, today) -> None:
    phone = Phone(client)
    assert "When did you sell?" in phone.dial("4", "1", "1", "10")  # sale -> maize -> 90 kg bag -> 10
    summary = phone.dial("2", "4300", "1")  # yesterday -> price -> trader
    yesterday = today - dt.timedelta(days=1)
    said = f"Sold 10 bags of 90 kg of maize at KSh 4,300 each on {Text('en').full_date(yesterday, today)}."
    assert said in summary, summary
    assert phone.dial("1").startswith("END Thank you")
    [sale] = ussd_sales(session)
    assert (sale.sold_on, sale.quantity, sale.price) == (yesterday, 10, 4300)


def test_ussd_today_is_one_key_and_the_summary_has_no_date(client, session, today) -> None:
    phone = Phone(client)
    summary = phone.dial("4", "1", "1", "10", "1", "4300", "1")
    assert " on " not in summary.splitlines()[0], summary
    phone.dial("1")
    assert [sale.sold_on for sale in ussd_sales(session)] == [today]


@pytest.mark.parametrize("typed", ["{d:%d%m}", "{d.day}.{d.month}", "{d:%d%m%Y}", "{d.day}/{d.month}/{d:%y}"])
def test_ussd_another_day_typed_on_the_keypad(client, session, today, typed) -> None:
    day = today - dt.timedelta(days=20)
    phone = Phone(client)
    assert "Example: 2511" in phone.dial("4", "1", "1", "10", "3")
    assert "Price received" in phone.dial(typed.format(d=day))
    assert "Confirm" in phone.dial("4300", "1")
    assert phone.dial("1").startswith("END Thank you")
    assert [sale.sold_on for sale in ussd_sales(session)] == [day]


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        (lambda today: f"{today + dt.timedelta(days=3):%d%m%Y}", "That date is in the future."),
        (lambda today: f"{today - dt.timedelta(days=400):%d%m%Y}", "We record sales of the last 366 days only."),
        (lambda today: "3102", "That date does not exist."),
        (lambda today: "12", "That date does not exist."),
    ],
    ids=["future", "too-old", "31-february", "too-short"],
)
def test_ussd_refuses_a_day_no_sale_can_have_and_asks_again(client, session, today, typed, hint) -> None:
    phone = Phone(client)
    phone.dial("4", "1", "1", "10", "3")
    screen = phone.dial(typed(today))
    assert screen.startswith(f"CON {hint}\n") and "Example: 2511" in screen, screen
    assert "When did you sell?" in phone.dial("0")  # back to the choice, nothing stored
    assert ussd_sales(session) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_day_screens_fit_one_screen_in_every_language(app, client, session, today, lang) -> None:
    app.config["USSD_RESUME_MINUTES"] = 0  # each session below starts afresh, not with a resume offer
    session.execute(sa.update(Contact).where(Contact.phone == FARMER).values(language=lang, language_chosen=True))
    t = Text(lang)
    phone = Phone(client)
    screens = [phone.dial("4", "1", "1", "10"), phone.dial("3")]
    assert t("When did you sell?") in screens[0] and t("Yesterday") in screens[0]
    hints = {"3102": "That date does not exist.", f"{today:%d%m}2099": "That date is in the future.",
             "01011990": "We record sales of the last %(days)s days only."}
    for typed, hint in hints.items():
        screens.append(Phone(client).dial("4", "1", "1", "10", "3", typed))
        assert screens[-1].startswith("CON " + t(hint, days=366)), screens[-1]
    summary = Phone(client).dial("4", "1", "1", "1250", "2", "4300", "1")  # the longest summary: with its day
    assert t.full_date(today - dt.timedelta(days=1), today) in summary, summary
    for screen in [*screens, summary]:
        shown = screen[4:]
        assert len(shown) <= 160 and is_gsm7(shown), (lang, len(shown), shown)
