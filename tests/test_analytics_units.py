"""Hand-computed small cases for every analytics indicator (no database)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smsgw.analytics import engagement, enrolment, groups, indicators
from smsgw.analytics.config import AnalyticsConfig, empty_transport
from smsgw.analytics.dispersion import choose_series, dispersion_report, spread
from smsgw.analytics.reference import attach_reference
from smsgw.analytics.stats import decide, mann_kendall, trend, weighted_mean_interval, wilson

D = pd.Timestamp
CFG = AnalyticsConfig(bootstrap_reps=199)
MARKETS = pd.DataFrame({"market": ["a", "b", "c", "d"], "region": ["R1", "R1", "R2", "R2"],
                        "latitude": [0.0, 0.0, 0.0, 0.0], "longitude": [0.0, 1.0, 2.0, 0.4]})


def _prices(
    rows: list[tuple[str, str, float]], commodity: str = "maize", grade: str = "", currency: str = "KES"
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": [D(d) for _, d, _ in rows],
            "market": [m for m, _, _ in rows],
            "commodity": commodity,
            "grade": grade,
            "price": [p for _, _, p in rows],
            "currency": currency,
            "base": "kg",
            "kind": "wholesale",
        }
    )


def _sales(rows: list[dict]) -> pd.DataFrame:
    base = {"farmer": 1, "commodity": "maize", "grade": "", "market": "a", "quantity": 1.0, "price": 7.0,
            "currency": "KES", "base": "kg", "buyer_type": "market", "group_order": pd.NA}
    frame = pd.DataFrame([{**base, **row} for row in rows])
    frame["day"] = pd.to_datetime(frame["day"])
    frame["sale_id"] = np.arange(len(frame))
    frame["group_order"] = frame["group_order"].astype("Int64")
    return frame


PRICES = _prices([("a", "2024-03-01", 10), ("a", "2024-03-02", 12), ("a", "2024-03-04", 11),
                  ("b", "2024-03-03", 20), ("c", "2024-02-20", 5)])


def test_reference_window_nearest_stale_and_missing() -> None:
    sales = _sales([{"day": "2024-03-04"}, {"day": "2024-03-05"}, {"day": "2024-03-10"}, {"day": "2024-03-20"},
                    {"day": "2024-03-04", "market": "d"}, {"day": "2024-03-04", "currency": "XOF"}])
    out = attach_reference(sales, PRICES, MARKETS, CFG)
    # 03-04: median(10, 12, 11); 03-05: median(12, 11); 03-10: latest own price 6 days old,
    # median over its own window; 03-20: nothing within 7 days.
    assert out["ref_price"].tolist()[:3] == [11.0, 11.5, 11.0]
    assert out["ref_age"].tolist()[:3] == [0, 1, 6]
    assert math.isnan(out["ref_price"].iloc[3])
    assert out["ref_missing"].iloc[3] == "no wholesale price in the 7 days up to the sale"
    # Market d has no prices: the nearest with a price in the window is a (b is as near but
    # its 03-03 price is also in the window: ties go by code), never c (stale, far).
    assert (out["ref_market"].iloc[4], out["ref_source"].iloc[4], out["ref_price"].iloc[4]) == (
        "a",
        "nearest market",
        11.0,
    )
    assert out["distance_km"].iloc[4] == pytest.approx(44.48, abs=0.05)
    assert out["ref_missing"].iloc[5] == "no wholesale price for this commodity, currency and unit"


def test_reference_uses_the_sale_grade_only_when_priced() -> None:
    prices = pd.concat([PRICES, _prices([("a", "2024-03-04", 15)], grade="G1")])
    sales = _sales([{"day": "2024-03-04", "grade": "G1"}, {"day": "2024-03-04", "grade": "G2"}])
    out = attach_reference(sales, prices, MARKETS, CFG)
    assert out["ref_price"].tolist() == [15.0, 11.0]


def _frame(shares: list[float], quantities: list[float], buyers: list[str] | None = None) -> pd.DataFrame:
    n = len(shares)
    sales = _sales([{"day": "2024-03-04", "farmer": i, "price": 11.0 * s, "quantity": q,
                     "buyer_type": (buyers or ["market"] * n)[i]} for i, (s, q) in enumerate(zip(shares, quantities))])
    people = pd.DataFrame({"farmer": range(n), "group": "g", "village": "v", "enrolled": pd.NaT, "consent": "granted"})
    frame, excluded = indicators.prepare(sales, PRICES, MARKETS, people, CFG)
    assert excluded == {}
    return frame


def test_price_share_discount_and_quartiles() -> None:
    frame = _frame([0.5, 0.8], [1.0, 3.0])
    level = indicators.price_share(frame, CFG, np.random.default_rng(1))
    expected = math.exp((math.log(0.5) + 3 * math.log(0.8)) / 4)
    assert level.value == pytest.approx(expected)
    assert level.detail["median"] == pytest.approx(0.65)
    assert level.detail["q1"] == pytest.approx(0.575) and level.detail["q3"] == pytest.approx(0.725)
    assert indicators.log_discount(level).value == pytest.approx(-math.log(expected))


def test_net_share_subtracts_the_transport_cost() -> None:
    frame = _frame([0.6], [1.0])
    transport = pd.DataFrame({"from_market": ["a"], "to_market": ["a"], "cost": [3.0], "currency": ["KES"]})
    level, _ = indicators.net_share(frame, AnalyticsConfig(transport=transport), np.random.default_rng(1))
    assert level.value == pytest.approx(0.6 * 11 / (11 - 3))
    plain, _ = indicators.net_share(frame, AnalyticsConfig(transport=empty_transport()), np.random.default_rng(1))
    assert plain.value == pytest.approx(0.6) and "equals the price share" in plain.reason


def test_pass_through_recovers_the_slope_with_month_effects() -> None:
    rng = np.random.default_rng(3)
    n = 120
    log_ref = rng.normal(3, 0.3, n)
    month = np.where(np.arange(n) < 60, "2024-03", "2024-04")
    log_price = 0.8 * log_ref + np.where(month == "2024-03", -0.2, 0.1) + rng.normal(0, 0.01, n)
    frame = pd.DataFrame({"log_price": log_price, "log_ref": log_ref, "farmer": np.arange(n) % 30,
                          "day": pd.to_datetime(month + "-10")})
    level = indicators.pass_through(frame, CFG)
    assert level.value == pytest.approx(0.8, abs=0.01)
    assert level.ci[0] < 0.8 < level.ci[1]
    assert indicators.pass_through(frame.head(10), CFG).reason == "10 sales, fewer than 30"


def test_buyer_concentration_hhi_and_shares() -> None:
    frame = _frame([0.7, 0.7, 0.7], [1.0, 1.0, 2.0], ["market", "processor", "market"])
    level = indicators.buyer_mix(frame, CFG, np.random.default_rng(1))
    assert level.value == pytest.approx(0.75**2 + 0.25**2)
    assert level.detail["distinct_buyer_types"] == 2
    assert level.detail["volume_share"]["market"] == pytest.approx(0.75)


def test_dispersion_cv_and_mean_abs_log_difference() -> None:
    prices = _prices(
        [
            ("a", "2024-03-01", 1.0),
            ("a", "2024-03-09", 1.0),
            ("b", "2024-03-05", 1.5),
            ("b", "2024-03-06", 2.5),
            ("c", "2024-03-07", 4.0),
            ("a", "2024-04-02", 3.0),
            ("b", "2024-04-02", 3.0),
        ]
    )
    result = dispersion_report(prices, "maize", CFG)
    march, april = result["periods"]
    values = np.array([1.0, 2.0, 4.0])  # b's median is (1.5 + 2.5) / 2
    assert march["n_markets"] == 3
    assert march["cv"] == pytest.approx(values.std() / values.mean())
    assert march["mean_abs_log_diff"] == pytest.approx(4 * math.log(2) / 3)
    assert april == {"period": "2024-04", "n_markets": 2, "cv": None, "mean_abs_log_diff": None}
    assert result["trend"]["state"] == "insufficient data"


def test_dispersion_keeps_one_series() -> None:
    prices = pd.concat(
        [
            _prices([("a", "2024-03-01", 1.0), ("b", "2024-03-01", 2.0)]),
            _prices([("a", "2024-03-01", 9.0)], grade="G1"),
            _prices([("c", "2024-03-01", 7.0)], currency="XOF"),
        ]
    )
    series, excluded = choose_series(prices)
    assert len(series) == 2 and excluded == {"other currency": 1, "other grade or variety": 1}
    table = spread(series.assign(period=0)[["period", "market", "price"]])
    assert table["n_markets"].iloc[0] == 2 and math.isnan(table["cv"].iloc[0])


def test_mann_kendall_hand_values() -> None:
    assert mann_kendall(np.array([1.0, 2.0, 3.0, 4.0]), np.zeros(4)) [:2] == (6.0, pytest.approx(4 * 3 * 13 / 18))
    s, var, _ = mann_kendall(np.array([1.0, 1.0, 2.0]), np.zeros(3))
    assert (s, var) == (2.0, pytest.approx((66 - 18) / 18))
    # Two seasons: S and variances add.
    s, var, _ = mann_kendall(np.array([1.0, 5.0, 2.0, 4.0]), np.array([0, 1, 0, 1]))
    assert s == 0.0 and var == pytest.approx(2 * (2 * 1 * 9) / 18)


def _monthly(values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.period_range("2021-01", periods=len(values), freq="M"))


def test_trend_states_with_minimum_effect_and_support() -> None:
    rising = trend(_monthly(0.6 + 0.01 * np.arange(36)), CFG)
    assert rising.slope_per_year == pytest.approx(0.12, rel=0.02)
    rng = np.random.default_rng(5)
    flat = trend(_monthly(0.7 + rng.normal(0, 0.01, 36)), CFG)
    tiny = trend(_monthly(0.7 + 0.0005 * np.arange(36)), CFG)
    short = trend(_monthly(np.arange(5.0)), CFG)
    effect = CFG.effects["price_share"]
    states = decide([rising, flat, tiny, short], [effect] * 4, [0.7] * 4, CFG)
    assert [t.state for t in states] == [
        "improving",
        "no detectable change",
        "no detectable change",
        "insufficient data",
    ]
    assert "minimum important effect" in states[2].reason
    dispersion = decide([rising], [CFG.effects["dispersion_cv"]], [0.7], CFG)[0]
    assert dispersion.state == "worsening"


def test_weighted_mean_interval_methods() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(0, 1, 400)
    few = weighted_mean_interval(y, np.ones(400), np.arange(400) % 10, CFG, rng)
    many = weighted_mean_interval(y, np.ones(400), np.arange(400) % 40, CFG, rng)
    assert few[3].startswith("wild cluster bootstrap (Webb") and few[4] == 10
    assert many[3].startswith("cluster bootstrap") and many[1] < y.mean() < many[2]


def test_group_premiums_and_delivery_rate() -> None:
    orders = pd.DataFrame({
        "order_id": [1, 2, 3], "status": ["fulfilled", "fulfilled", "cancelled"], "group": ["g", "g", "h"],
        "market": "a", "commodity": "maize", "grade": "", "currency": "KES", "base": "kg",
        "agreed_price": [12.0, 12.0, 12.0], "price": [13.2, 12.0, np.nan], "committed": [10.0, 10.0, 5.0],
        "quantity": [10.0, 8.0, 0.0], "members": [1, 1, 1],
        "created_at": [D("2024-02-28")] * 3, "day": [D("2024-03-04")] * 3,
    })
    members = pd.DataFrame({"order_id": [1, 2], "farmer": [0, 0]})
    frame = _frame([0.8], [1.0])
    done = groups.order_premiums(orders, frame, members, PRICES, MARKETS, CFG)
    assert done["premium_ref"].tolist() == pytest.approx([math.log(1.2), math.log(12 / 11)])
    assert done["premium_members"].iloc[0] == pytest.approx(math.log(1.2) - math.log(0.8))
    rate = groups.delivery_rate(orders, CFG)
    assert rate.value == pytest.approx(1 / 3) and rate.detail == {"as_agreed": 1, "resolved": 3}


def _events() -> dict[str, pd.DataFrame]:
    at = pd.to_datetime(["2024-03-02", "2024-02-27"])
    inbound = pd.DataFrame({"farmer": pd.array([0, 1], dtype="Int64"), "at": at, "day": at.normalize(),
                            "command": ["price", "price"], "text": ["PRICE MAIZE", "bei mahindi"]})
    out_at = pd.to_datetime(["2024-03-03"] * 5)
    outbound = pd.DataFrame({"farmer": pd.array([2, 2, 2, 2, 2], dtype="Int64"), "at": out_at, "day": out_at,
                             "purpose": ["bulletin", "reply", "reply", "reply", "reply"],
                             "status": ["delivered", "delivered", "delivered", "failed", "queued"]})
    ussd = pd.DataFrame(
        {
            "farmer": pd.array([0, 1, 2], dtype="Int64"),
            "at": out_at[:3],
            "day": out_at[:3],
            "status": ["Incomplete", "Success", "Incomplete"],
            "state": [{"resume": [["main", {}], ["sale_qty", {}]]}, {"prices_viewed": ["beans", "maize"]}, {}],
        }
    )
    return {"inbound": inbound, "outbound": outbound, "ussd": ussd,
            "subscriptions": pd.DataFrame({"farmer": [2], "commodity": ["maize"]}),
            "aliases": pd.DataFrame({"alias": ["maize", "mahindi"], "commodity": ["maize", "maize"]})}


def test_a_share_without_variation_still_has_an_interval() -> None:
    events = _events()
    frame = _frame([0.7, 0.7, 0.7, 0.7], [1.0] * 4).assign(day=D("2024-06-30"))  # nobody asked lately
    informed, _ = engagement.informed_sales(frame, events, CFG, np.random.default_rng(1))
    clusters = frame["cluster"].nunique()  # one village: one independent observation
    assert informed.value == 0.0 and informed.method.startswith("Wilson")
    assert informed.ci == pytest.approx(wilson(0, clusters, CFG.level)) and informed.ci[1] > 0.3


def test_engagement_indicators() -> None:
    events = _events()
    frame = _frame([0.7, 0.7, 0.7, 0.7], [1.0] * 4)
    informed, _ = engagement.informed_sales(frame, events, CFG, np.random.default_rng(1))
    # Farmer 0 asked by SMS 2 days before, farmer 1 looked maize up by USSD the day before
    # (an SMS 6 days before was too early), farmer 2 had a bulletin the day before; farmer
    # 3 never.
    assert informed.value == pytest.approx(0.75)
    delivery, _ = engagement.message_delivery(events, CFG)
    assert delivery.value == pytest.approx(3 / 4) and delivery.detail["pending"] == 1
    dropped = engagement.ussd_dropoff(events, CFG)
    assert dropped.value == pytest.approx(2 / 3)
    assert dropped.detail["dropped_by_screen"] == {"sale_qty": 1, "menu (no flow started)": 1}
    people = pd.DataFrame({"farmer": [0, 1, 2, 3], "consent": ["granted", "granted", "withdrawn", "granted"],
                           "enrolled": [D("2024-01-01"), D("2024-01-01"), D("2024-01-01"), pd.NaT]})
    sales = frame.assign(day=D("2024-03-04"))
    active = engagement.active_subscribers(events, sales, people, D("2024-03-05"), CFG)
    assert active.value is None  # the only subscriber opted out
    rate, _ = engagement.reporting_rate(sales.head(1), people, D("2024-03-05"), CFG)
    assert rate.value == pytest.approx(1 / 2)


def test_enrolment_effect_hand_case() -> None:
    days = pd.date_range("2024-01-01", "2024-06-30", freq="D")
    prices = pd.DataFrame({"day": days, "market": "a", "commodity": "maize", "grade": "", "price": 10.0,
                           "currency": "KES", "base": "kg", "kind": "wholesale"})
    rows = []
    months = pd.to_datetime([f"2024-{m:02d}-15" for m in range(1, 7)])
    for farmer, rise in enumerate([0.10, 0.02, 0.02]):
        for k, day in enumerate(months):
            log_share = math.log(0.7) + (rise if k >= 3 else 0.0)
            rows.append({"day": day, "farmer": farmer, "price": 10 * math.exp(log_share), "quantity": 1.0})
    sales = _sales(rows)
    people = pd.DataFrame({"farmer": [0, 1, 2], "group": ["g1", "g2", "g3"], "village": ["v1", "v2", "v3"],
                           "enrolled": [D("2024-04-10"), pd.NaT, pd.NaT], "consent": "granted"})
    frame, _ = indicators.prepare(sales, prices, MARKETS, people, CFG)
    result = enrolment.estimate(frame, CFG, np.random.default_rng(1))
    # From April on the treated farmer gains 0.10 over its pre mean, the controls 0.02.
    assert result.effect_pct == pytest.approx(math.expm1(0.08) * 100)
    assert result.state == "insufficient data" and "3 clusters" in result.reason
    study = result.event_study.set_index("event")["effect"]
    assert study.loc[-1] == pytest.approx(0.0) and study.loc[0] == pytest.approx(0.08)


def test_pass_through_equals_statsmodels_cluster_fit() -> None:
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(4)
    n = 300
    month = rng.choice(["2024-01", "2024-02", "2024-03"], n)
    log_ref = rng.normal(3, 0.2, n)
    farmer = rng.integers(0, 40, n)
    log_price = 0.6 * log_ref + rng.normal(0, 0.1, n) + rng.normal(0, 0.05, 40)[farmer]
    frame = pd.DataFrame({"log_price": log_price, "log_ref": log_ref, "farmer": farmer,
                          "day": pd.to_datetime(pd.Series(month) + "-10")})
    mine = indicators.pass_through(frame, CFG)
    fit = smf.ols("y ~ x + C(m)", data=pd.DataFrame({"y": log_price, "x": log_ref, "m": month})).fit(
        cov_type="cluster", cov_kwds={"groups": farmer})
    lo, hi = fit.conf_int(alpha=0.05).loc["x"]
    assert mine.value == pytest.approx(fit.params["x"], abs=1e-9)
    assert mine.ci == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))
