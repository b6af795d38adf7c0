"""Seeded simulations of the designs' promises (issue 19): autocorrelation-robust trends,
village-clustered level intervals, the pre-trend test and the smallest detectable effect.

Few replications in the default suite (wider bands), many behind ``slow`` (CI runs them).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from smsgw.analytics import cells, enrolment, indicators
from smsgw.analytics.config import AnalyticsConfig
from smsgw.analytics.stats import decide, mde, trend

CFG = AnalyticsConfig(bootstrap_reps=199)
VERDICTS = ("improving", "worsening")


# ---------------------------------------------------------------- trends (item 5)

def _ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    """A stationary AR(1) series of length ``n`` with lag-1 correlation ``rho``."""
    y = np.empty(n)
    y[0] = rng.normal(0, sd)
    shocks = rng.normal(0, sd * math.sqrt(1 - rho**2), n)
    for t in range(1, n):
        y[t] = rho * y[t - 1] + shocks[t]
    return y


def false_trends(n: int, rho: float, reps: int, seed: int) -> tuple[float, float]:
    """Share of trendless AR(1) monthly series whose test rejects at 5 %, and whose state is a verdict."""
    rng = np.random.default_rng(seed)
    index = pd.period_range("2020-01", periods=n, freq="M")
    rejected = verdicts = 0
    for _ in range(reps):
        # A price share around 0.7 moving by a few points from month to month: large enough
        # that the minimum important effect (2 points a year) does not hide a false slope.
        series = pd.Series(0.7 + _ar1(rng, n, rho, 0.05), index=index)
        found = trend(series, CFG)
        rejected += found.p_value is not None and found.p_value < CFG.alpha
        state = decide([found], [CFG.effects["price_share"]], [0.7], CFG)[0].state
        verdicts += state in VERDICTS
    return rejected / reps, verdicts / reps


def test_trendless_autocorrelated_series_are_rarely_called_a_trend() -> None:
    rejected, verdicts = false_trends(36, 0.5, reps=600, seed=51)
    assert rejected <= 0.085 and verdicts <= 0.085, (rejected, verdicts)


@pytest.mark.slow
@pytest.mark.parametrize("n", [24, 36, 60])
def test_trendless_autocorrelated_series_many_runs(n: int) -> None:
    rejected, verdicts = false_trends(n, 0.5, reps=4000, seed=500 + n)
    assert rejected <= 0.07 and verdicts <= 0.07, (n, rejected, verdicts)


def test_a_real_trend_is_still_found_and_its_detectable_size_stated() -> None:
    rng = np.random.default_rng(52)
    index = pd.period_range("2020-01", periods=48, freq="M")
    rising = trend(pd.Series(0.6 + 0.01 * np.arange(48) + _ar1(rng, 48, 0.5, 0.01), index=index), CFG)
    flat = trend(pd.Series(0.7 + _ar1(rng, 48, 0.5, 0.02), index=index), CFG)
    rising, flat = decide([rising, flat], [CFG.effects["price_share"]] * 2, [0.7] * 2, CFG)
    assert rising.state == "improving" and rising.slope_per_year == pytest.approx(0.12, abs=0.02)
    assert rising.lag1_autocorrelation is not None and rising.n_effective < 48
    assert flat.state == "no detectable change"
    assert "smallest detectable change" in flat.reason and flat.mde_per_year > 0
    # The smallest detectable effect is (q_.975 + q_.8) / q_.975 of the half-width.
    assert mde(1.96, 0.95) == pytest.approx(1.96 + 0.8416, abs=1e-3)


# ---------------------------------------------------------------- level intervals (item 6)

PRICES = pd.DataFrame({"day": pd.date_range("2024-01-01", "2024-12-31", freq="D"), "market": "a",
                       "commodity": "maize", "grade": "", "price": 10.0, "currency": "KES", "base": "kg",
                       "kind": "wholesale"})
MARKETS = pd.DataFrame({"market": ["a"], "region": ["R"], "latitude": [0.0], "longitude": [0.0]})


def _village_sales(rng: np.random.Generator, villages: int, per_village: int, sales: int) -> tuple[pd.DataFrame,
                                                                                                    pd.DataFrame]:
    """Sales whose log share is ln 0.7 plus village, farmer and sale noise (truth: 0.7)."""
    n = villages * per_village
    village = np.arange(n) // per_village
    k = n * sales
    farmer = rng.integers(0, n, k)
    log_share = (math.log(0.7) + rng.normal(0, 0.08, villages)[village[farmer]] + rng.normal(0, 0.05, n)[farmer]
                 + rng.normal(0, 0.1, k))
    frame = pd.DataFrame({"sale_id": np.arange(k), "day": PRICES["day"].to_numpy()[rng.integers(7, 360, k)],
                          "farmer": farmer, "commodity": "maize", "grade": "", "market": "a",
                          "quantity": rng.lognormal(3, 0.5, k), "price": 10 * np.exp(log_share), "currency": "KES",
                          "base": "kg", "buyer_type": "market", "group_order": pd.array([pd.NA] * k, dtype="Int64")})
    people = pd.DataFrame({"farmer": np.arange(n), "group": "", "village": [f"v{v}" for v in village],
                           "enrolled": pd.NaT, "consent": "granted"})
    return frame, people


def coverage(reps: int, seed: int, villages: int = 40) -> tuple[float, float]:
    """Share of price-share intervals covering 0.7: village-clustered (the report's) and farmer-clustered."""
    rng = np.random.default_rng(seed)
    hits = farmer_hits = 0
    for _ in range(reps):
        sales, people = _village_sales(rng, villages, 320 // villages, 6)
        frame, _ = indicators.prepare(sales, PRICES, MARKETS, people, CFG)
        level = indicators.price_share(frame, CFG, rng)
        hits += level.ci[0] <= 0.7 <= level.ci[1]
        old = cells.share_levels(frame.drop(columns="cluster").assign(cell="all"), CFG, rng).iloc[0]
        farmer_hits += old["lo"] <= 0.7 <= old["hi"]
    assert "villages as clusters" in level.method and level.clusters == villages
    return hits / reps, farmer_hits / reps


def test_price_share_interval_is_clustered_by_village() -> None:
    covered, by_farmer = coverage(60, seed=61)
    assert 0.88 <= covered <= 1.0, covered
    assert by_farmer < covered


@pytest.mark.slow
@pytest.mark.parametrize("villages", [40, 16])
def test_price_share_interval_coverage_many_runs(villages: int) -> None:
    covered, by_farmer = coverage(1000, seed=600 + villages, villages=villages)
    assert 0.93 <= covered <= 0.97, (villages, covered, by_farmer)
    assert by_farmer < 0.8


# ---------------------------------------------------------------- pre-trends (item 3)

def staggered(rng: np.random.Generator, pre_slope: float, villages: int = 30, per_village: int = 8) -> pd.DataFrame:
    """Villages enrolled at random months (30 % never); enrolled villages' shares drift by
    ``pre_slope`` a month all along (no effect of enrolment at all)."""
    n = villages * per_village
    village = np.arange(n) // per_village
    months = pd.period_range("2023-01", periods=24, freq="M").to_timestamp()
    start = rng.integers(4, 20, villages)
    never = rng.random(villages) < 0.3
    enrolled = pd.to_datetime(np.where(never, np.datetime64("NaT"), months.to_numpy()[start] + np.timedelta64(9, "D")))
    k = n * 24 * 2
    farmer = rng.integers(0, n, k)
    day = months.to_numpy()[rng.integers(0, 24, k)] + rng.integers(0, 28, k).astype("timedelta64[D]")
    month = pd.DatetimeIndex(day).year * 12 + pd.DatetimeIndex(day).month - (2023 * 12 + 1)
    drift = np.where(never[village[farmer]], 0.0, pre_slope * month)
    own = rng.normal(0, 0.1, n)[farmer]
    shocks = rng.normal(0, 0.02, (villages, 24))[village[farmer], month]
    log_share = math.log(0.7) + own + shocks + drift + rng.normal(0, 0.1, k)
    prices = PRICES.assign(day=pd.date_range("2023-01-01", periods=len(PRICES), freq="D"))
    prices = pd.concat([prices, prices.assign(day=prices["day"] + pd.Timedelta(days=365))])
    sales = pd.DataFrame({"sale_id": np.arange(k), "day": pd.to_datetime(day), "farmer": farmer, "commodity": "maize",
                          "grade": "", "market": "a", "quantity": rng.lognormal(3, 0.5, k),
                          "price": 10 * np.exp(log_share), "currency": "KES", "base": "kg", "buyer_type": "market",
                          "group_order": pd.array([pd.NA] * k, dtype="Int64")})
    people = pd.DataFrame({"farmer": np.arange(n), "group": "", "village": [f"v{v}" for v in village],
                           "enrolled": enrolled[village], "consent": "granted"})
    frame, _ = indicators.prepare(sales, prices, MARKETS, people, CFG)
    return frame


def pre_trend_runs(pre_slope: float, reps: int, seed: int) -> list[enrolment.EnrolmentEffect]:
    rng = np.random.default_rng(seed)
    return [enrolment.estimate(staggered(rng, pre_slope), CFG, rng) for _ in range(reps)]


def test_a_pre_trend_refuses_the_verdict() -> None:
    # Enrolled villages rising 1 % a month, no effect: without the test, "improving" most times.
    results = pre_trend_runs(0.01, reps=4, seed=71)
    assert all(r.pre_trend["rejects"] for r in results), [r.pre_trend for r in results]
    assert all(r.state == "insufficient data" and r.reason.startswith("refused: the pre-trend test") for r in results)
    assert all(r.effect_pct > 1 for r in results)  # the naive before/after difference is there
    assert all(len(r.pre_trend["estimates"]) == CFG.pre_trend_months for r in results)


def test_parallel_trends_pass_the_pre_trend_test() -> None:
    results = pre_trend_runs(0.0, reps=4, seed=72)
    assert sum(r.pre_trend["rejects"] for r in results) <= 1
    assert all(6 <= r.pre_trend["df"] <= CFG.pre_trend_months - 1 for r in results)
    assert all(set(r.event_study["event"]) == set(range(-CFG.event_before, CFG.event_after + 1)) for r in results)
    assert all(r.state == "no detectable change" and "smallest detectable change" in r.reason
               for r in results if not r.pre_trend["rejects"])


@pytest.mark.slow
def test_pre_trend_test_many_runs() -> None:
    drifting = pre_trend_runs(0.01, reps=40, seed=700)
    parallel = pre_trend_runs(0.0, reps=200, seed=800)
    assert np.mean([r.pre_trend["rejects"] for r in drifting]) >= 0.95
    assert np.mean([r.state in VERDICTS for r in drifting]) <= 0.05
    # Refusing under parallel trends is the safe error; it stays near the test's level.
    assert np.mean([r.pre_trend["rejects"] for r in parallel]) <= 0.1
