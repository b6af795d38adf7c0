"""Validation on real price series: dispersion against an independent computation, and
planted enrolment effects simulated on top of a real daily reference series."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smsgw.analytics import sources
from smsgw.analytics.config import AnalyticsConfig
from smsgw.analytics.dispersion import dispersion_report
from smsgw.analytics.enrolment import estimate
from smsgw.analytics.indicators import prepare
from tests.support.dispersion import SHARED_DATA as DATA
from tests.support.dispersion import compare, independent
from tests.support.prerequisites import prerequisite

KENYA = DATA / "kenya_wfp_food_prices_ken_2006_2023.csv"
GHANA = DATA / "ghana_mofa_weekly_prices_2009_2014_long.csv"
INDIA = DATA / "india_agmarknet_malabar_daily_2021_2026.csv"
pytestmark = prerequisite(DATA.exists(), "shared/data is not beside the repository")


def test_kenya_maize_names_and_units() -> None:
    raw = pd.read_csv(KENYA, skiprows=[1])
    wanted = raw[raw["commodity"].isin(["Maize", "Maize (white)"]) & (raw["pricetype"] == "Wholesale")]
    # Trap: one crop under two names, quoted per KG and per 90 KG.
    assert set(wanted["unit"]) == {"KG", "90 KG"}
    kg = wanted["unit"].str.extract(r"^(\d+)?\s*KG$")[0].astype("float64").fillna(1.0)
    plain = pd.DataFrame(
        {"day": pd.to_datetime(wanted["date"]), "market": wanted["market"], "price": wanted["price"] / kg}
    )
    frame = sources.read_wfp(KENYA)
    frame = frame[frame["commodity"].isin(["Maize", "Maize (white)"]) & (frame["kind"] == "wholesale")]
    result = dispersion_report(frame.assign(commodity="maize"), "maize", AnalyticsConfig())
    assert result["rows_excluded"] == {}
    compare(result["periods"], independent(plain, "M"), "%Y-%m")


def test_ghana_maize_with_duplicated_keys() -> None:
    raw = pd.read_csv(GHANA)
    maize = raw[raw["commodity"] == "Maize"]
    assert maize.duplicated(["date", "market", "commodity"]).sum() > 0  # two bulletins, one date
    assert set(maize["unit"]) == {"100 KG"}
    plain = pd.DataFrame(
        {"day": pd.to_datetime(maize["date"]), "market": maize["market"], "price": maize["price_ghs"] / 100}
    )
    frame = sources.read_mofa(GHANA)
    result = dispersion_report(frame[frame["commodity"] == "Maize"], "Maize", AnalyticsConfig(freq="week"))
    compare(result["periods"], independent(plain, "W-SUN"), "%G-W%V")


def test_india_coconut_compares_like_with_like() -> None:
    raw = pd.read_csv(INDIA)
    coconut = raw[raw["commodity_slug"] == "coconut"]
    main = coconut["variety"].value_counts().index[0]
    same = coconut[coconut["variety"] == main]
    plain = pd.DataFrame(
        {"day": pd.to_datetime(same["date"]), "market": same["market"], "price": same["modal_price"] / 100}
    )
    frame = sources.read_agmarknet(INDIA)
    result = dispersion_report(frame[frame["commodity"] == "coconut"], "coconut", AnalyticsConfig())
    assert result["series"]["grade"] == main
    assert result["rows_excluded"] == {"other grade or variety": int((coconut["variety"] != main).sum())}
    compare(result["periods"], independent(plain, "M"), "%Y-%m")
    # Mixing the varieties would have reported a very different spread.
    mixed = independent(pd.DataFrame({"day": pd.to_datetime(coconut["date"]), "market": coconut["market"],
                                      "price": coconut["modal_price"] / 100}), "M")
    assert (mixed["cv"] - independent(plain, "M")["cv"]).abs().max() > 0.1


# ---------------------------------------------------------------- planted effects

@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """Two years of a real daily wholesale series: black pepper at Kannur (Agmarknet)."""
    frame = sources.read_agmarknet(INDIA)
    frame = frame[
        (frame["market"] == "Kannur Market") & (frame["commodity"] == "black-pepper") & (frame["grade"] == "Other")
    ]
    frame = frame[(frame["day"] >= "2022-01-01") & (frame["day"] < "2024-01-01")]
    return frame.assign(market="M", grade="")


MARKETS = pd.DataFrame({"market": ["M"], "region": ["Kerala"], "latitude": [11.87], "longitude": [75.37]})


def simulate(prices: pd.DataFrame, rng: np.random.Generator, effect: float, villages: int = 30,
             per_village: int = 10, sales_per_month: float = 2.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Farmers in villages selling at ~0.7 of the real price, enrolled village by village."""
    n = villages * per_village
    village = np.arange(n) // per_village
    months = pd.period_range("2022-01", "2023-12", freq="M").to_timestamp().to_numpy()
    start = months[rng.integers(3, 21, size=villages)] + rng.integers(0, 28, size=villages).astype("timedelta64[D]")
    never = rng.random(villages) < 0.3
    enrolled = np.where(never[village], np.datetime64("NaT"), start[village]).astype("datetime64[ns]")
    people = pd.DataFrame({"farmer": np.arange(n), "group": "", "village": pd.Series(village).map("v{}".format),
                           "enrolled": enrolled, "consent": "granted"})
    days = np.sort(prices["day"].unique())
    k = int(n * 24 * sales_per_month)
    farmer, day = rng.integers(0, n, size=k), days[rng.integers(0, len(days), size=k)]
    market_price = prices.groupby("day")["price"].median().reindex(day).to_numpy()
    month = pd.DatetimeIndex(day).year * 12 + pd.DatetimeIndex(day).month
    shocks = rng.normal(0, 0.03, size=(villages, 24))[village[farmer], month - month.min()]
    post = ~np.isnat(enrolled[farmer]) & (day >= enrolled[farmer])
    log_share = (
        math.log(0.7) + rng.normal(0, 0.1, n)[farmer] + shocks + rng.normal(0, 0.12, k) + math.log1p(effect) * post
    )
    sales = pd.DataFrame(
        {
            "sale_id": np.arange(k),
            "day": pd.to_datetime(day),
            "farmer": farmer,
            "commodity": "black-pepper",
            "grade": "",
            "market": "M",
            "quantity": rng.lognormal(3, 0.5, k),
            "price": market_price * np.exp(log_share),
            "currency": "INR",
            "base": "kg",
            "buyer_type": "farm_gate_trader",
            "group_order": pd.array([pd.NA] * k, dtype="Int64"),
        }
    )
    return sales, people


def run(prices: pd.DataFrame, effect: float, reps: int, seed: int, **kwargs: int) -> list:
    cfg = AnalyticsConfig(bootstrap_reps=399)
    results = []
    for r in range(reps):
        rng = np.random.default_rng(seed + r)
        sales, people = simulate(prices, rng, effect, **kwargs)
        frame, _ = prepare(sales, prices, MARKETS, people, cfg)
        results.append(estimate(frame, cfg, rng))
    return results


def test_planted_effect_is_covered_and_detected(reference: pd.DataFrame) -> None:
    results = run(reference, 0.08, reps=10, seed=100)
    covered = sum(r.ci_pct[0] <= 8.0 <= r.ci_pct[1] for r in results)
    assert covered >= 8
    assert all(r.ci_pct[0] > 0 and r.state == "improving" for r in results)
    assert all("clusters resampled" in r.method and r.clusters == 30 for r in results)


def test_no_effect_reads_no_detectable_change(reference: pd.DataFrame) -> None:
    results = run(reference, 0.0, reps=10, seed=200)
    assert sum(r.state == "no detectable change" for r in results) >= 8


@pytest.mark.slow
def test_planted_effect_coverage_many_runs(reference: pd.DataFrame) -> None:
    results = run(reference, 0.08, reps=100, seed=1000)
    coverage = np.mean([r.ci_pct[0] <= 8.0 <= r.ci_pct[1] for r in results])
    assert 0.89 <= coverage <= 0.995
    assert np.mean([r.ci_pct[0] > 0 for r in results]) >= 0.95


@pytest.mark.slow
def test_no_effect_many_runs(reference: pd.DataFrame) -> None:
    results = run(reference, 0.0, reps=100, seed=2000)
    assert 0.89 <= np.mean([r.state == "no detectable change" for r in results]) <= 1.0


@pytest.mark.slow
def test_wild_bootstrap_with_fewer_clusters(reference: pd.DataFrame) -> None:
    results = run(reference, 0.08, reps=60, seed=3000, villages=15, per_village=20)
    assert all("Rademacher" in r.method for r in results)
    assert np.mean([r.ci_pct[0] <= 8.0 <= r.ci_pct[1] for r in results]) >= 0.85
