"""Issue 23, store or sell: evidence with a known answer, honesty, farmer answers, backtest on real series."""
from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from smsgw.config import LANGUAGES, ConfigError, load_settings
from smsgw.i18n import Text
from smsgw.messaging.encoding import measure, normalize
from smsgw.models import Commodity, Contact, Market, OutboundMessage
from smsgw.services import bulletin_texts, storage, storage_texts
from smsgw.services.storage import Advice, MonthEvidence, StoragePolicy
from tests.support.dispersion import SHARED_DATA
from tests.support.prerequisites import require
from tests.test_admin_fixtures import csrf_token

FARMER = "+254700000001"
_ids = itertools.count()
pytest_plugins = ["tests.test_admin_fixtures"]


def _series(sale_prices: dict[int, float]) -> dict[tuple[int, int], float]:
    """October harvests at 100 per kg, and each season's May price (the next year)."""
    series: dict[tuple[int, int], float] = {}
    for season, may in sale_prices.items():
        series[(season, 10)] = 100.0
        series[(season + 1, 5)] = may
    return series


# Six seasons: May paid 120 in four and 95 in two (2017 and 2020).
KNOWN = _series({2015: 120, 2016: 120, 2017: 95, 2018: 120, 2019: 120, 2020: 95})


def _may(months: list[MonthEvidence]) -> MonthEvidence:
    return next(m for m in months if m.sale == 5)


def test_evidence_on_a_hand_made_series_has_the_known_answer() -> None:
    policy = StoragePolicy(loss_pct_month=1.0, min_years=5, max_months=9)
    may = _may(storage.evidence(KNOWN, 10, 2022, dt.date(2022, 9, 1), policy))
    assert may.months == 7 and may.years == 6 and may.paid == 4
    # 7 months at 1 % lost a month keeps 93 %: 120 x 0.93 / 100 - 1 and 95 x 0.93 / 100 - 1.
    assert may.median_gain == pytest.approx(0.116)
    assert may.worst_gain == pytest.approx(-0.1165)
    assert may.worst_year in (2017, 2020)
    # Only May has prices: every other sale month has no season.
    assert all(m.years == 0 for m in storage.evidence(KNOWN, 10, 2022, dt.date(2022, 9, 1), policy) if m.sale != 5)
    advice = storage.advise(KNOWN, [10, 11], dt.date(2022, 10, 5), policy)
    assert (advice.verdict, advice.harvest, advice.best and advice.best.sale) == ("store", 10, 5)
    # A cost per kg and month, in the market's currency: (120 x 0.93 - 7 x 1) / 100 - 1.
    costly = StoragePolicy(loss_pct_month=1.0, cost_per_kg_month={"KES": 1.0})
    gains = _may(storage.evidence(KNOWN, 10, 2022, dt.date(2022, 9, 1), costly, "KES")).gains
    assert gains[2015] == pytest.approx(0.046)
    other = _may(storage.evidence(KNOWN, 10, 2022, dt.date(2022, 9, 1), costly, "XOF"))
    assert other.gains[2015] == pytest.approx(0.116)


def test_only_earlier_seasons_and_ended_months_count() -> None:
    policy = StoragePolicy(loss_pct_month=1.0, min_years=5)
    # Asked in April 2021: the 2020 season's May is not over, so five seasons, not six.
    may = _may(storage.evidence(KNOWN, 10, 2021, dt.date(2021, 4, 20), policy))
    assert sorted(may.gains) == [2015, 2016, 2017, 2018, 2019]
    # The season being decided never counts, even with its prices in the series.
    assert 2019 not in _may(storage.evidence(KNOWN, 10, 2019, dt.date(2030, 1, 1), policy)).gains
    # Too few seasons: the answer says so, with how many there are and are needed.
    thin = storage.advise(KNOWN, [10], dt.date(2019, 10, 1), policy)
    assert (thin.verdict, thin.best, thin.years, thin.need) == ("thin", None, 4, 5)
    assert storage.advise(KNOWN, [], dt.date(2022, 10, 1), policy).verdict == "no_season"
    # Poor odds: May paid in 2 of 6 seasons.
    poor = _series({2015: 95, 2016: 120, 2017: 95, 2018: 120, 2019: 95, 2020: 95})
    assert storage.advise(poor, [10], dt.date(2022, 10, 1), policy).verdict == "sell"


def test_backtest_replays_each_season_with_what_was_known_then() -> None:
    policy = StoragePolicy(loss_pct_month=1.0, min_years=3)
    series = _series({2010: 120, 2011: 120, 2012: 120, 2013: 95, 2014: 120, 2015: 95, 2016: 120})
    result = storage.backtest(series, [10], policy)
    # Seasons 2013 on have three earlier ones; 2016's May (2017) is known too.
    assert [d.season for d in result.decisions] == [2013, 2014, 2015, 2016]
    assert [d.stated for d in result.decisions] == pytest.approx([1.0, 0.75, 0.8, 4 / 6])
    assert [d.paid for d in result.decisions] == [False, True, False, True]
    assert all(d.verdict == "store" for d in result.decisions)
    assert result.store_right == 2 and result.right == 2
    assert result.mean_followed == pytest.approx((-0.1165 + 0.116 - 0.1165 + 0.116) / 4)
    rows = storage.calibration(result.decisions)
    assert sum(row.count for row in rows) == 4
    top = rows[-1]
    assert (top.count, top.observed) == (2, 0.0)  # stated 1.0 (2013) and 0.8 (2015): storing lost both
    text = storage.render_backtest(Commodity(code="maize", names={}), [], policy)
    assert "Calibration" in text


def test_harvest_months_come_from_the_content_file(tmp_path) -> None:
    assert storage.harvest_months("KE", "maize") == (10, 11)
    assert storage.harvest_months("KE", "fertilizer-dap") == ()
    path = tmp_path / "seasons.toml"
    path.write_text('[[season]]\ncountry = "ke"\ncommodity = "Maize"\nharvest_months = [8, 7]\n')
    assert storage.harvest_calendar(path) == {("KE", "maize"): (7, 8)}


def test_settings_are_checked() -> None:
    settings = load_settings({"STORAGE_LOSS_PCT_MONTH": "3", "STORAGE_COST_PER_KG_MONTH": "KES:0.05"})
    policy = StoragePolicy.from_settings(settings)
    assert (policy.loss_pct_month, policy.cost_per_kg_month, policy.min_years) == (3.0, {"KES": 0.05}, 5)
    for key, value in (("STORAGE_LOSS_PCT_MONTH", "-1"), ("STORAGE_MIN_YEARS", "0"),
                       ("STORAGE_COST_PER_KG_MONTH", "0.05"), ("STORAGE_MAX_MONTHS", "12")):
        with pytest.raises(ConfigError, match=key):
            load_settings({key: value})


# ------------------------------------------------------------------ farmer answers

def _advices() -> list[Advice]:
    month = MonthEvidence(9, 1, 4, {2010 + i: g for i, g in enumerate([0.18, 0.2, -0.23, 0.3, 0.1, 0.2, 0.4,
                                                                        0.1, 0.2, 0.15, 0.1, 0.12])})
    return [
        Advice("store", 9, month, (month,), 12, 5),
        Advice("sell", 9, month, (month,), 12, 5),
        Advice("thin", 9, None, (), 4, 5),
        Advice("no_season", None, None),
    ]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_answers_fit_one_sms_and_one_screen_in_every_language(lang: str) -> None:
    t = Text(lang)
    names = {"en": "Potatoes", "fr": "Pommes de terre", "sw": "Viazi", "wo": "Pombitéer"}
    crop = Commodity(code="potatoes", names=names, short_names={})
    market = Market(code="x", name="Nairobi Wakulima", short_name="Nairobi Wakulima", country="KE")
    for advice in _advices():
        for text in (storage_texts.answer(t, advice, crop, market), storage_texts.bulletin_line(t, advice, crop)):
            if text is None:
                continue
            encoded = measure(normalize(text, lang))
            assert encoded.encoding == "gsm7" and encoded.units <= 160, text
            if lang != "en":
                assert "storing" not in text.lower(), text  # translated


def _last_reply(session, phone: str) -> OutboundMessage | None:
    query = sa.select(OutboundMessage).where(OutboundMessage.to_phone == phone, OutboundMessage.purpose == "reply")
    return session.scalars(query.order_by(OutboundMessage.id.desc())).first()


def test_a_demo_farmer_asks_store_maize(client, session) -> None:
    gateway_id = f"store-{next(_ids)}"
    response = client.post("/at/sms", data={"from": FARMER, "to": "22384", "text": "STORE MAIZE", "id": gateway_id,
                                            "date": "2026-12-04 10:15:02", "linkId": "", "networkCode": "63902"})
    assert response.status_code == 200
    reply = _last_reply(session, FARMER)
    assert reply is not None
    assert reply.text.startswith("Maize Nakuru: storing from Oct to ") and "Not a guarantee." in reply.text


def test_a_swahili_farmer_gets_the_answer_in_swahili(client, session) -> None:
    phone = "+254700000002"
    client.post("/at/sms", data={"from": phone, "to": "22384", "text": "HIFADHI MAHINDI ELDORET",
                                 "id": f"store-{next(_ids)}", "date": "2026-12-04 10:15:02", "linkId": "",
                                 "networkCode": "63902"})
    reply = _last_reply(session, phone)
    assert reply is not None and reply.text.startswith("Mahindi Eldoret: kuhifadhi kutoka Okt")


def test_ussd_prices_offer_store_or_sell(client) -> None:
    session_id = f"store-{next(_ids)}"

    def hop(text: str) -> str:
        response = client.post("/at/ussd", data={"sessionId": session_id, "phoneNumber": FARMER, "text": text})
        return response.get_data(as_text=True)

    screen = hop("1*1*1")
    assert "2 Store or sell?" in screen and len(screen) - 4 <= 160
    answer = hop("1*1*1*2")
    assert answer.startswith("END Maize Nakuru: storing from Oct") and len(answer) - 4 <= 160


def test_harvest_month_bulletin_carries_the_line_once_a_week(session, monkeypatch) -> None:
    contact = session.scalar(sa.select(Contact).where(Contact.phone == FARMER))
    today = dt.date.today()
    thursday = today - dt.timedelta(days=(today.weekday() - storage.BULLETIN_WEEKDAY) % 7)
    monkeypatch.setattr(storage, "harvest_months", lambda country, commodity, path=None: (thursday.month,))
    with_line = bulletin_texts.daily_text(session, contact, thursday)
    assert with_line is not None and "Storing Maize " in with_line
    assert measure(with_line).units <= 160
    other_day = bulletin_texts.daily_text(session, contact, thursday - dt.timedelta(days=1))
    assert other_day is not None and "Storing" not in other_day
    monkeypatch.setattr(storage, "harvest_months", lambda country, commodity, path=None: ())
    assert "Storing" not in (bulletin_texts.daily_text(session, contact, thursday) or "")


def test_operator_page_shows_the_pattern_and_the_backtest(as_role) -> None:
    client = as_role("viewer")
    page = client.get("/admin/analytics/storage?commodity=maize&market=nakuru")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for part in ('id="evidence"', 'id="backtest"', 'id="calibration"', 'id="seasons"', "Oct → May", "plot.svg"):
        assert part in html, part
    plot = client.get("/admin/analytics/storage/plot.svg?commodity=maize&market=nakuru")
    assert plot.status_code == 200 and plot.mimetype == "image/svg+xml" and b"<svg" in plot.data
    assert b'href="http' not in plot.data  # nothing loaded from the internet
    assert client.get("/admin/analytics/storage?commodity=nothing").status_code == 404
    french = as_role("viewer")
    french.post("/admin/language", data={"language": "fr", "csrf_token": csrf_token(french, "/admin/")})
    assert "Test rétrospectif" in french.get("/admin/analytics/storage").get_data(as_text=True)


# ------------------------------------------------------------------ real series

@pytest.mark.slow
def test_backtest_runs_on_the_real_kenya_series(tmp_path) -> None:
    kenya = SHARED_DATA / "kenya_wfp_food_prices_ken_2006_2023.csv"
    require(kenya.exists(), "shared/data is not beside the repository")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'real.db'}",
           "PRICE_AUTO_APPROVE_SOURCES": "import:wfp", "SMSGW_LOG_LEVEL": "WARNING"}

    def smsgw(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "smsgw", *args], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    smsgw("init")
    smsgw("import-prices", str(kenya), "--format", "wfp", "--create-missing", "--country", "KE")
    smsgw("prices", "approve", "--all", "--source", "import:wfp")
    text = smsgw("report", "storage", "--commodity", "maize", "--country", "KE", "--backtest", "--as-of", "2026-12-04")
    # The numbers the README reports (section "Store or sell").
    assert "all markets                                    90     55    21     41    +1.4%    +3.1%" in text
    assert "0.6-0.8           30         0.64      0.43" in text
    evidence = smsgw("report", "storage", "--commodity", "maize", "--market", "Nakuru", "--as-of", "2026-12-04")
    assert evidence.startswith("Store or sell: maize on 2026-12-04")
