"""Issue 19, item 1: the enrolment effect estimated from the service's own data alone.

Farmers register by USSD, a trusted reporter sends the market's prices by SMS, farmers
report their sales by SMS month after month, and some of them start asking for prices
(enrolment) in staggered months; the time is set by the test (time-machine), everything
else goes through the real webhooks. Farmers who get prices sell 8 % better; the
report, reading only what the service stored, finds it.
"""
from __future__ import annotations

import datetime as dt
import itertools
import math

import numpy as np
import pandas as pd
import sqlalchemy as sa
import time_machine

from smsgw.analytics import report
from smsgw.analytics.config import AnalyticsConfig
from smsgw.models import Contact, PriceObservation, SaleReport
from tests.test_ussd_flows import Phone

START = dt.datetime(2027, 1, 4, 6, 0, tzinfo=dt.UTC)
MONTHS = 12
FARMERS = 40
REPORTER = "+254700000010"  # the demo's trusted reporter for Nakuru
ENROL_MONTH = (3, 5, 7, 9, None)  # farmer i starts asking for prices in month ENROL_MONTH[i % 5]
_ids = itertools.count()


def _sms(client, phone: str, text: str, at: dt.datetime) -> None:
    with time_machine.travel(at, tick=False):
        answer = client.post("/at/sms", data={"from": phone, "to": "22384", "text": text,
                                              "id": f"months-{next(_ids)}", "date": f"{at:%Y-%m-%d %H:%M:%S}",
                                              "linkId": "", "networkCode": "63902"})
    assert answer.status_code == 200


def _register(client, phone: str, name: str, at: dt.datetime) -> None:
    with time_machine.travel(at, tick=False):
        handset = Phone(client, phone)
        handset.dial("1")  # English
        screen = handset.dial("4")  # report a sale: asks for a name, then the home market
        assert "Enter your name" in screen
        screen = handset.dial(name)
        nakuru = next(line.split(" ", 1)[0] for line in screen.splitlines() if "Nakuru" in line)
        handset.dial(nakuru)


def test_farmers_played_over_simulated_months_answer_the_enrolment_question(client, connection, session) -> None:
    rng = np.random.default_rng(19)
    phones = [f"+2547110030{i:02d}" for i in range(FARMERS)]
    for i, phone in enumerate(phones):
        _register(client, phone, f"Farmer {i}", START - dt.timedelta(days=3, minutes=i))
    own = rng.normal(0, 0.05, FARMERS)
    for month in range(MONTHS):
        first = START + dt.timedelta(days=30 * month)
        level = 4700 * math.exp(rng.normal(0, 0.03))  # the month's wholesale price per 90 kg bag
        for day in range(7):
            _sms(client, REPORTER, f"P MAIZE NAKURU {round(level * (1 + 0.005 * day))}",
                 first + dt.timedelta(days=day, hours=1))
        for i, phone in enumerate(phones):
            sold_at = first + dt.timedelta(days=1 + i % 5, hours=3, minutes=i)
            enrolled = ENROL_MONTH[i % 5] is not None and month >= ENROL_MONTH[i % 5]
            if ENROL_MONTH[i % 5] == month:
                _sms(client, phone, "PRICE MAIZE NAKURU", sold_at - dt.timedelta(hours=1))
            share = 0.7 * math.exp(own[i] + rng.normal(0, 0.04)) * (1.08 if enrolled else 1.0)
            _sms(client, phone, f"SOLD 5BAG90 MAIZE {round(level * share)}", sold_at)

    simulated = Contact.phone.in_(phones)
    enrolled = session.scalars(sa.select(Contact).where(simulated, Contact.enrolled_at.is_not(None))).all()
    assert len(enrolled) == 32 and {c.enrolment_source for c in enrolled} == {"prices"}
    sales = session.scalar(sa.select(sa.func.count()).select_from(SaleReport).join(Contact).where(simulated))
    assert sales == FARMERS * MONTHS
    # The anomaly check may hold a price or two of the month-to-month jumps: the rest is published.
    assert session.scalar(sa.select(sa.func.count()).select_from(PriceObservation).where(
        PriceObservation.observed_on >= START.date(), PriceObservation.status == "approved")) >= 6 * MONTHS

    cfg = AnalyticsConfig(bootstrap_reps=499)
    inputs = report.load_inputs(connection, cfg, since=START.date())
    result = report.bargaining(inputs, cfg, pd.Timestamp(START.date() + dt.timedelta(days=30 * MONTHS)))
    effect = result["enrolment"]
    lo, hi = effect["ci_pct"]
    assert lo <= 8 <= hi and effect["state"] == "improving", effect
    assert effect["treated_farmers"] == 32 and not effect["pre_trend"].get("rejects")
