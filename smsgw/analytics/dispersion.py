"""Market-side indicators from reference prices alone: spatial dispersion, seasonality, margins.

Per period each market contributes its median price per base unit over the period; then
``cv`` = population standard deviation / mean across markets, and ``mean_abs_log_diff`` =
mean over market pairs of |ln p_m - ln p_n|. Periods with fewer than 3 markets get nulls.
Only one series is ever compared across markets: one commodity, grade (or variety),
currency and base unit; the others are counted and left out.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from smsgw.analytics.config import AnalyticsConfig
from smsgw.analytics.stats import Trend, decide, trend

SERIES = ["commodity", "grade", "currency", "base"]
MIN_MARKETS = 3


def period_label(index: pd.PeriodIndex, freq: str) -> list[str]:
    """"2024-03" for months, ISO "2024-W10" for weeks."""
    fmt = "%Y-%m" if freq == "month" else "%G-W%V"
    return list(index.to_timestamp(how="start").strftime(fmt))


def choose_series(prices: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The series with most observations and the counts of rows left out, by reason."""
    if prices.empty:
        return prices, {}
    sizes = prices.groupby(SERIES, observed=True).size().sort_values(ascending=False, kind="stable")
    main = sizes.index[0]
    keep = np.logical_and.reduce([prices[c].to_numpy() == v for c, v in zip(SERIES, main, strict=True)])
    other = prices[~keep]
    excluded: dict[str, int] = {}
    for column, label in (
        ("currency", "other currency"),
        ("base", "other unit base"),
        ("grade", "other grade or variety"),
    ):
        differs = other[column] != main[SERIES.index(column)]
        excluded[label] = int(differs.sum())
        other = other[~differs]
    excluded["other commodity name"] = len(other)
    return prices[keep], {k: v for k, v in excluded.items() if v}


def market_medians(prices: pd.DataFrame, code: str) -> pd.DataFrame:
    """Each market's median price per period (columns period, market, price)."""
    frame = prices.assign(period=prices["day"].dt.to_period(code))
    return frame.groupby(["period", "market"], observed=True)["price"].median().reset_index()


def spread(medians: pd.DataFrame) -> pd.DataFrame:
    """Per period: n_markets, cv and mean_abs_log_diff over the markets' medians."""
    grouped = medians.groupby("period", observed=True)["price"]
    n = grouped.size()
    cv = grouped.std(ddof=0) / grouped.mean()
    # Sum over pairs of |x_j - x_i| for sorted x equals sum_k x_(k) * (2k - n - 1).
    logs = medians.assign(x=np.log(medians["price"]))
    logs["k"] = logs.groupby("period", observed=True)["x"].rank(method="first")
    logs["n"] = logs.groupby("period", observed=True)["x"].transform("size")
    logs["term"] = logs["x"] * (2 * logs["k"] - logs["n"] - 1)
    pair_sum = logs.groupby("period", observed=True)["term"].sum()
    mald = pair_sum / (n * (n - 1) / 2)
    table = pd.DataFrame({"n_markets": n, "cv": cv, "mean_abs_log_diff": mald})
    few = table["n_markets"] < MIN_MARKETS
    table.loc[few, ["cv", "mean_abs_log_diff"]] = np.nan
    return table


def dispersion_table(prices: pd.DataFrame, cfg: AnalyticsConfig) -> pd.DataFrame:
    """Dispersion per period of one series, every period from first to last listed."""
    if prices.empty:
        return pd.DataFrame(columns=["n_markets", "cv", "mean_abs_log_diff"])
    table = spread(market_medians(prices, cfg.period_code))
    full = pd.period_range(table.index.min(), table.index.max(), freq=cfg.period_code)
    table = table.reindex(full)
    table["n_markets"] = table["n_markets"].fillna(0).astype("int64")
    return table


def dispersion_trend(table: pd.DataFrame, cfg: AnalyticsConfig) -> Trend:
    """Trend of the CV (lower is better), with its state."""
    raw = trend(table["cv"], cfg)
    level = float(table["cv"].mean()) if table["cv"].notna().any() else 0.0
    return decide([raw], [cfg.effects["dispersion_cv"]], [level], cfg)[0]


def dispersion_report(prices: pd.DataFrame, commodity: str, cfg: AnalyticsConfig) -> dict[str, Any]:
    """The JSON-able dispersion report of ``prices`` (one commodity's observations)."""
    series, excluded = choose_series(prices)
    table = dispersion_table(series, cfg)
    result = dispersion_trend(table, cfg)
    periods = [
        {
            "period": label,
            "n_markets": int(row.n_markets),
            "cv": _num(row.cv),
            "mean_abs_log_diff": _num(row.mean_abs_log_diff),
        }
        for label, row in zip(period_label(table.index, cfg.freq), table.itertuples(), strict=True)
    ]
    main = {c: str(series[c].iloc[0]) for c in SERIES} if len(series) else {}
    return {
        "commodity": commodity, "freq": cfg.freq, "periods": periods,
        "trend": {"slope_per_year": _num(result.slope_per_year),
                  "ci": [_num(v) for v in result.ci] if result.ci else None, "state": result.state},
        "series": main, "rows_used": len(series), "rows_excluded": excluded,
        "trend_detail": result.as_dict(),
    }


def current_dispersion(prices: pd.DataFrame, today: pd.Timestamp, cfg: AnalyticsConfig) -> dict[str, object]:
    """Dispersion now: markets with a price in the last ``max_age_days``, each at its median there."""
    recent = prices[(prices["day"] > today - pd.Timedelta(days=cfg.max_age_days)) & (prices["day"] <= today)]
    medians = recent.groupby("market")["price"].median().reset_index().assign(period=0)
    if medians.empty:
        return {"n_markets": 0, "cv": None, "mean_abs_log_diff": None}
    row = spread(medians).iloc[0]
    return {
        "n_markets": int(row["n_markets"]),
        "cv": _num(row["cv"]),
        "mean_abs_log_diff": _num(row["mean_abs_log_diff"]),
    }


def seasonal_amplitude(prices: pd.DataFrame) -> float | None:
    """Mean over market-years with 10+ months of (max - min) / mean of monthly median prices."""
    monthly = (
        prices.assign(month=prices["day"].dt.to_period("M"))
        .groupby(["market", "month"])["price"]
        .median()
        .reset_index()
    )
    monthly["year"] = monthly["month"].dt.year
    stats = monthly.groupby(["market", "year"])["price"].agg(["max", "min", "mean", "size"])
    stats = stats[stats["size"] >= 10]
    return None if stats.empty else float(((stats["max"] - stats["min"]) / stats["mean"]).mean())


def retail_margin(wholesale: pd.DataFrame, retail: pd.DataFrame) -> dict[str, object]:
    """Median retail / wholesale - 1 over (market, day) pairs where both exist, same unit and currency."""
    keys = ["market", "day", "commodity", "currency", "base"]
    both = wholesale.groupby(keys)["price"].median().to_frame("w").join(
        retail.groupby(keys)["price"].median().to_frame("r"), how="inner")
    if both.empty:
        return {"value": None, "n": 0}
    return {"value": float((both["r"] / both["w"] - 1).median()), "n": len(both)}


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
