"""Market-side indicators from reference prices alone: spatial dispersion, seasonality, margins.

Per period each market contributes its median price per base unit over the period; then
``cv`` = population standard deviation / mean across markets, and ``mean_abs_log_diff`` =
mean over market pairs of |ln p_m - ln p_n|. Periods with fewer than 3 markets get nulls.
Only one series is ever compared across markets: one commodity, grade (or variety),
currency and base unit; the others are counted and left out. So are prices held for review
or rejected, and prices of 0 (forecast or missing values in public files): every row left
out is counted by reason and listed (``excluded_rows``). When some markets are served by the
service and at least three others are not, their dispersions are compared period by period.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from smsgw.analytics.config import AnalyticsConfig
from smsgw.analytics.stats import Trend, decide, lag1, trend

SERIES = ["commodity", "grade", "currency", "base"]
MIN_MARKETS = 3


def period_label(index: pd.PeriodIndex, freq: str) -> list[str]:
    """"2024-03" for months, ISO "2024-W10" for weeks."""
    fmt = "%Y-%m" if freq == "month" else "%G-W%V"
    return list(index.to_timestamp(how="start").strftime(fmt))


HELD = "held for review by the anomaly check (not approved)"
REJECTED = "rejected by an operator"
ZERO = "price 0 or missing (a forecast or a gap in the file, not a price)"
ROW_COLUMNS = ["day", "market", "commodity", "grade", "currency", "base", "price", "reason"]


def usable_rows(prices: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Approved rows with a positive price, and the others with their reason."""
    reason = pd.Series("", index=prices.index, dtype="object")
    if "status" in prices:
        detail = prices.get("status_reason", pd.Series("", index=prices.index)).fillna("").astype(str)
        held = prices["status"] == "pending"
        reason[held] = HELD
        reason[held & (detail != "")] = HELD + ": " + detail[held & (detail != "")]
        reason[prices["status"] == "rejected"] = REJECTED
    price = pd.to_numeric(prices["price"], errors="coerce") if len(prices) else prices["price"]
    reason[(reason == "") & ~(price > 0)] = ZERO
    left = prices[reason != ""].assign(reason=reason[reason != ""])
    return prices[reason == ""], left.reindex(columns=ROW_COLUMNS)


def choose_series(prices: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The series with most observations and the counts of rows left out, by reason."""
    series, left = choose_series_rows(prices)
    return series, _counts(left)


def _counts(left: pd.DataFrame) -> dict[str, int]:
    """Rows left out per reason (a held row's own reason is summed under "held for review")."""
    if left.empty:
        return {}
    kind = left["reason"].where(~left["reason"].str.startswith(HELD), HELD)
    return {str(k): int(v) for k, v in kind.value_counts(sort=False).items()}


def choose_series_rows(prices: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The series with most usable observations, and every row left out with its reason.

    Ties between series are broken by their names, never by the order of the rows.
    """
    usable, left = usable_rows(prices)
    if usable.empty:
        return usable, left
    sizes = usable.groupby(SERIES, observed=True).size().reset_index(name="n")
    sizes = sizes.sort_values(["n", *SERIES], ascending=[False, True, True, True, True], kind="stable")
    main = tuple(sizes.iloc[0][SERIES])
    keep = np.logical_and.reduce([usable[c].to_numpy() == v for c, v in zip(SERIES, main, strict=True)])
    other = usable[~keep]
    reason = pd.Series("other commodity name", index=other.index, dtype="object")
    for column, label in (
        ("grade", "other grade or variety"),
        ("base", "other unit base"),
        ("currency", "other currency"),
    ):  # the last assignment wins: currency first, then unit, then grade
        reason[other[column] != main[SERIES.index(column)]] = label
    left = pd.concat([left, other.assign(reason=reason).reindex(columns=ROW_COLUMNS)], ignore_index=True)
    return usable[keep], left


def excluded_list(left: pd.DataFrame) -> list[dict[str, Any]]:
    """Every row left out, named: day, market, series, price and why."""
    rows = left.sort_values(["day", "market"], kind="stable")
    return [
        {"day": pd.Timestamp(r.day).date().isoformat(), "market": str(r.market), "commodity": str(r.commodity),
         "grade": str(r.grade), "currency": str(r.currency), "base": str(r.base), "price": _num(r.price),
         "reason": str(r.reason)}
        for r in rows.itertuples()
    ]


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
        return pd.DataFrame({"n_markets": pd.Series(dtype="int64"), "cv": pd.Series(dtype="float64"),
                             "mean_abs_log_diff": pd.Series(dtype="float64")},
                            index=pd.PeriodIndex([], freq=cfg.period_code))
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


def dispersion_report(prices: pd.DataFrame, commodity: str, cfg: AnalyticsConfig,
                      served: set[str] | None = None) -> dict[str, Any]:
    """The JSON-able dispersion report of ``prices`` (one commodity's observations).

    ``prices`` may hold rows that are not approved (``status``): they are counted and named.
    ``served``: the markets the service serves, for the comparison with the others.
    """
    series, left = choose_series_rows(prices)
    excluded = _counts(left)
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
        "excluded_rows": excluded_list(left), "trend_detail": result.as_dict(),
        "comparison": served_comparison(series, served, cfg),
        "note": "" if len(series) else "no approved price of this kind with a positive value",
    }


def served_comparison(series: pd.DataFrame, served: set[str] | None, cfg: AnalyticsConfig) -> dict[str, Any]:
    """CV among markets the service serves against CV among the others, per period.

    Per period each group needs 3+ markets. The mean difference (served - not served) has an
    interval for autocorrelated periods: standard error from the effective number of periods
    n (1 - r1) / (1 + r1), Student t. Descriptive: the service chose where to work.
    """
    if not served or series.empty:
        return {"available": False, "reason": "no market is served by the service" if not served else "no prices"}
    inside = series["market"].isin(served)
    if inside.all() or not inside.any():
        return {"available": False, "reason": "all priced markets are served" if inside.all()
                else "no served market has prices"}
    tables = {name: dispersion_table(series[mask], cfg) for name, mask in (("served", inside), ("not_served", ~inside))}
    both = pd.concat({"cv_served": tables["served"]["cv"], "cv_not_served": tables["not_served"]["cv"]},
                     axis=1, join="inner").dropna()
    out: dict[str, Any] = {
        "available": len(both) > 0,
        "served_markets": int(series.loc[inside, "market"].nunique()),
        "other_markets": int(series.loc[~inside, "market"].nunique()),
        "periods": len(both),
        "mean_cv_served": _num(both["cv_served"].mean()) if len(both) else None,
        "mean_cv_not_served": _num(both["cv_not_served"].mean()) if len(both) else None,
        "difference": None, "ci": None,
        "method": "mean over periods where both groups have 3+ markets; t interval with an effective number "
                  "of periods corrected for lag-1 autocorrelation; descriptive, not an effect of the service",
    }
    if len(both) == 0:
        out["reason"] = "no period with 3+ markets in both groups"
        return out
    diff = (both["cv_served"] - both["cv_not_served"]).to_numpy()
    out["difference"] = float(diff.mean())
    if len(diff) >= 3 and diff.std(ddof=1) > 0:
        rho = max(lag1(diff), 0.0)
        n_eff = max(len(diff) * (1 - rho) / (1 + rho), 2.0)
        half = float(stats.t.ppf(0.5 + cfg.level / 2, n_eff - 1)) * diff.std(ddof=1) / math.sqrt(n_eff)
        out["ci"] = [out["difference"] - half, out["difference"] + half]
    return out


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
