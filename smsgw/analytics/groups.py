"""Group-order indicators: premium over the reference and over members' own sales, volume, delivery."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from smsgw.analytics.cells import clusters_of, mean_interval
from smsgw.analytics.config import AnalyticsConfig
from smsgw.analytics.indicators import Level
from smsgw.analytics.reference import attach_reference
from smsgw.analytics.stats import weighted_mean_interval, wilson

# Settled "as agreed": at or above the agreed price and at least this share of the quantity.
DELIVERED_SHARE = 0.9


def order_premiums(
    orders: pd.DataFrame, sales: pd.DataFrame, members: pd.DataFrame, prices: pd.DataFrame,
    markets: pd.DataFrame, cfg: AnalyticsConfig,
) -> pd.DataFrame:
    """Fulfilled sell orders with ln premium over the reference and over members' own sales."""
    done = orders[(orders["status"] == "fulfilled") & orders["price"].notna() & (orders["quantity"] > 0)].copy()
    if done.empty:
        return done.assign(premium_ref=pd.Series(dtype="float64"), premium_members=pd.Series(dtype="float64"),
                           member_sales=pd.Series(dtype="int64"))
    with_ref = attach_reference(done, prices, markets, cfg)
    done["ref_price"] = with_ref["ref_price"].to_numpy()
    done["premium_ref"] = np.log(done["price"] / done["ref_price"])
    # Members' own sales of the commodity in the weeks the order ran, outside any group order.
    weeks_start = done["created_at"].dt.to_period("W-SUN").dt.start_time
    weeks_end = done["day"].dt.to_period("W-SUN").dt.end_time.dt.normalize()
    windows = done[["order_id", "commodity", "currency"]].assign(start=weeks_start, end=weeks_end)
    own = sales[(sales["buyer_type"] != "group_order") & sales["group_order"].isna()]
    matched = members.merge(windows, on="order_id").merge(
        own[["farmer", "commodity", "currency", "day", "log_share", "quantity"]], on=["farmer", "commodity", "currency"]
    )
    matched = matched[(matched["day"] >= matched["start"]) & (matched["day"] <= matched["end"])]
    sums = matched.assign(wl=matched["log_share"] * matched["quantity"]).groupby("order_id")[["wl", "quantity"]].sum()
    own_log_share = (sums["wl"] / sums["quantity"]).reindex(done["order_id"]).to_numpy()
    done["premium_members"] = done["premium_ref"] - own_log_share
    counts = matched.groupby("order_id").size().reindex(done["order_id"]).fillna(0)
    done["member_sales"] = counts.astype("int64").to_numpy()
    return done


def premium_level(done: pd.DataFrame, column: str, cfg: AnalyticsConfig, rng: np.random.Generator) -> Level:
    """Delivered-quantity-weighted mean premium (as a fraction), producer groups as clusters."""
    usable = done[done[column].notna()]
    if usable.empty:
        return Level(None, reason="no fulfilled order with a comparison")
    mean, lo, hi, method, g = weighted_mean_interval(
        usable[column].to_numpy(), usable["quantity"].to_numpy(), usable["group"].to_numpy(), cfg, rng)
    ci = (math.expm1(lo), math.expm1(hi)) if np.isfinite(lo) else None
    return Level(math.expm1(mean), ci, len(usable), g, method + ", producer groups as clusters",
                 detail={"orders": len(usable)})


def delivery_rate(orders: pd.DataFrame, cfg: AnalyticsConfig) -> Level:
    """Share of resolved sell orders settled at or above the agreed price with >= 90 % delivered."""
    resolved = orders[orders["status"].isin(["fulfilled", "cancelled"])]
    if resolved.empty:
        return Level(None, reason="no fulfilled or cancelled sell order")
    agreed = resolved["agreed_price"].isna() | (resolved["price"] >= resolved["agreed_price"] - 1e-9)
    enough = resolved["quantity"] >= DELIVERED_SHARE * resolved["committed"] - 1e-9
    ok = int(((resolved["status"] == "fulfilled") & agreed & enough & (resolved["committed"] > 0)).sum())
    lo, hi = wilson(ok, len(resolved), cfg.level)
    return Level(ok / len(resolved), (lo, hi), len(resolved), resolved["group"].nunique(),
                 "Wilson score interval", detail={"as_agreed": ok, "resolved": len(resolved)})


def group_volume(frame: pd.DataFrame, cfg: AnalyticsConfig, rng: np.random.Generator) -> Level:
    """Share of reported volume sold through group orders, clustered by village."""
    if frame.empty:
        return Level(None, reason="no sales with a reference")
    in_group = ((frame["buyer_type"] == "group_order") | frame["group_order"].notna()).astype("float64")
    mean, lo, hi, method, g = mean_interval(in_group, frame["quantity"], clusters_of(frame), cfg, rng)
    ci = (max(lo, 0.0), min(hi, 1.0)) if lo is not None and hi is not None else None
    return Level(mean, ci, len(frame), g, method)
