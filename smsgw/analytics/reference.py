"""The reference price of each sale: a recent median wholesale price in the farmer's market.

Rule: the median approved wholesale price per base unit of the sale's commodity (and grade,
when the sale has one and such prices exist) in the farmer's reference market over the
sale day and the ``window_days`` before. When that market has no price in the window, the
nearest market (great-circle distance) that has one. When no market has one, the latest
price of at most ``max_age_days`` (median of its own window), own market first. Otherwise no
reference: the sale is counted and left out. Prices in another currency or base unit are
never used.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from smsgw.analytics.config import AnalyticsConfig
from smsgw.geo import haversine_km

SERIES = ["commodity", "grade", "currency", "base"]


def _series_grade(sales: pd.DataFrame, prices: pd.DataFrame) -> pd.Series:
    """The sale's grade where prices of that grade exist, else "" (ungraded prices)."""
    graded = prices.loc[prices["grade"] != "", SERIES].drop_duplicates()
    graded["has"] = True
    hit = sales[SERIES].merge(graded, on=SERIES, how="left")["has"].fillna(False).to_numpy(dtype=bool)
    return sales["grade"].where(hit, "")


def _latest(queries: pd.DataFrame, days: pd.DataFrame, market_col: str) -> pd.Series:
    """For each query row, the latest price day on or before its day in ``market_col``."""
    keys = SERIES + [market_col]
    left = queries.reset_index().sort_values("day", kind="stable")
    right = days.rename(columns={"market": market_col}).assign(latest=lambda f: f["day"]).sort_values("day")
    joined = pd.merge_asof(left, right[keys + ["day", "latest"]], on="day", by=keys, direction="backward")
    return joined.set_index("index")["latest"].reindex(queries.index)


def attach_reference(
    sales: pd.DataFrame, prices: pd.DataFrame, markets: pd.DataFrame, cfg: AnalyticsConfig,
) -> pd.DataFrame:
    """``sales`` with ref_price, ref_market, ref_age (days), ref_source and a ``ref_missing`` reason."""
    out = sales.copy()
    out["series_grade"] = _series_grade(sales, prices) if len(prices) else ""
    key_cols = ["commodity", "series_grade", "currency", "base", "market", "day"]
    queries = out[key_cols].drop_duplicates().rename(columns={"series_grade": "grade"}).reset_index(drop=True)
    obs_days = prices[SERIES + ["market", "day"]].drop_duplicates()
    window, max_age = pd.Timedelta(days=cfg.window_days), pd.Timedelta(days=cfg.max_age_days)

    queries["ref_market"], queries["distance_km"] = queries["market"], 0.0
    queries["latest"] = _latest(queries, obs_days, "ref_market")
    fresh = (queries["day"] - queries["latest"]) <= window
    chosen = [queries[fresh]]
    rest = queries[~fresh].drop(columns=["ref_market", "distance_km", "latest"])
    if len(rest):
        chosen.append(_nearest(rest, obs_days, markets, window, max_age))
    found = pd.concat(chosen, ignore_index=True)
    found["age"] = (found["day"] - found["latest"]).dt.days
    found["ref_price"] = _window_median(found, prices, window)
    found["ref_source"] = np.where(found["ref_market"] == found["market"], "own market", "nearest market")

    merged = out.merge(
        found.rename(columns={"grade": "series_grade"})[
            key_cols + ["ref_market", "distance_km", "age", "ref_price", "ref_source"]
        ],
        on=key_cols,
        how="left",
    )
    series_keys = prices[SERIES].drop_duplicates().rename(columns={"grade": "series_grade"}).assign(_any=True)
    any_price = merged[["commodity", "series_grade", "currency", "base"]].merge(series_keys, how="left")["_any"]
    missing = merged["ref_price"].isna()
    merged["ref_missing"] = np.select(
        [~missing, any_price.isna().to_numpy()],
        ["", "no wholesale price for this commodity, currency and unit"],
        default=f"no wholesale price in the {cfg.max_age_days} days up to the sale",
    )
    merged.index = out.index
    return merged.rename(columns={"age": "ref_age"})


def _nearest(
    rest: pd.DataFrame, obs_days: pd.DataFrame, markets: pd.DataFrame, window: pd.Timedelta, max_age: pd.Timedelta
) -> pd.DataFrame:
    """The best other market per query: fresh before stale, then nearest."""
    candidates = rest.merge(
        obs_days[SERIES + ["market"]].drop_duplicates().rename(columns={"market": "ref_market"}), on=SERIES
    )
    place = markets.set_index("market")[["latitude", "longitude"]]
    here = place.reindex(candidates["market"]).to_numpy(dtype="float64")
    there = place.reindex(candidates["ref_market"]).to_numpy(dtype="float64")
    distance = haversine_km(here[:, 0], here[:, 1], there[:, 0], there[:, 1])
    candidates["distance_km"] = np.where(candidates["market"] == candidates["ref_market"], 0.0, distance)
    # A market without coordinates can still serve, but only after every located one.
    candidates["distance_km"] = candidates["distance_km"].fillna(np.inf)
    candidates["latest"] = _latest(candidates, obs_days, "ref_market")
    age = candidates["day"] - candidates["latest"]
    candidates = candidates[age <= max_age].assign(stale=(age > window)[age <= max_age])
    candidates = candidates.sort_values(["stale", "distance_km", "ref_market"], kind="stable")
    return candidates.drop_duplicates(list(rest.columns), keep="first").drop(columns="stale")


def _window_median(found: pd.DataFrame, prices: pd.DataFrame, window: pd.Timedelta) -> pd.Series:
    """Median price over the window ending on the sale day (fresh) or the latest price day (stale)."""
    if not len(found):
        return pd.Series(dtype="float64")
    end = found["day"].where(found["day"] - found["latest"] <= window, found["latest"])
    spans = found[SERIES + ["ref_market"]].assign(end=end, row=np.arange(len(found)))
    offsets = pd.DataFrame({"offset": pd.to_timedelta(np.arange(window.days + 1), unit="D")})
    expanded = spans.merge(offsets, how="cross")
    expanded["day"] = expanded["end"] - expanded["offset"]
    hits = expanded.merge(
        prices[SERIES + ["market", "day", "price"]].rename(columns={"market": "ref_market"}),
        on=SERIES + ["ref_market", "day"],
    )
    medians = hits.groupby("row")["price"].median()
    return pd.Series(medians.reindex(np.arange(len(found))).to_numpy(), index=found.index)
