"""Sale-side indicators: price share, discount, net-of-transport share, pass-through, buyer mix.

Each indicator has a level over a cell (value, interval, counts) and a series per period
(NaN where a period has fewer than ``min_sales`` sales) for its trend. The work is done for
many cells at once in ``cells``; the functions here give one frame's figures as a ``Level``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from smsgw.analytics import cells
from smsgw.analytics.config import AnalyticsConfig
from smsgw.analytics.reference import attach_reference


@dataclass
class Level:
    """An indicator's value over a cell with its interval and the counts behind it."""

    value: float | None
    ci: tuple[float, float] | None = None
    n: int = 0
    clusters: int = 0
    method: str = ""
    reason: str = ""
    detail: dict[str, object] = field(default_factory=dict)


def prepare(
    sales: pd.DataFrame, prices: pd.DataFrame, markets: pd.DataFrame, people: pd.DataFrame, cfg: AnalyticsConfig,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Sales with their reference, share, region, group and period; and the excluded counts by reason."""
    enriched = attach_reference(sales, prices, markets, cfg)
    places = markets.set_index("market")["region"] if "region" in markets else pd.Series(dtype="object")
    enriched["region"] = places.reindex(enriched["market"]).fillna("").to_numpy()
    if len(people):
        who = people.set_index("farmer")[["group", "village", "enrolled"]]
        enriched = enriched.join(who, on="farmer")
    for column in ("group", "village"):
        if column not in enriched:
            enriched[column] = ""
        enriched[column] = enriched[column].fillna("")
    if "enrolled" not in enriched:
        enriched["enrolled"] = pd.NaT
    enriched["cluster"] = cells.cluster_key(enriched).to_numpy() if len(enriched) else ""
    excluded = enriched.loc[enriched["ref_missing"] != "", "ref_missing"].value_counts().to_dict()
    valid = enriched[enriched["ref_missing"] == ""].copy()
    valid["share"] = valid["price"] / valid["ref_price"]
    valid["log_share"] = np.log(valid["share"])
    valid["log_ref"] = np.log(valid["ref_price"])
    valid["log_price"] = np.log(valid["price"])
    valid["period"] = valid["day"].dt.to_period(cfg.period_code)
    return valid, {str(k): int(v) for k, v in excluded.items()}


def level_from(row: pd.Series, detail: dict[str, object] | None = None) -> Level:
    """A ``Level`` from one row of a ``cells`` table."""
    value = row["value"]
    if pd.isna(value):
        return Level(None, n=int(row["n"]), clusters=int(row["clusters"]), reason=str(row.get("reason", "")))
    ci = None if pd.isna(row["lo"]) else (float(row["lo"]), float(row["hi"]))
    return Level(float(value), ci, int(row["n"]), int(row["clusters"]), str(row["method"]),
                 str(row.get("reason", "") or ""), detail or {})


def share_detail(row: pd.Series) -> dict[str, object]:
    """Median and quartiles of the share, from a ``cells.share_levels`` row."""
    return {"median": float(row["median"]), "q1": float(row["q1"]), "q3": float(row["q3"])}


def _one(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(cell="all")


def price_share(frame: pd.DataFrame, cfg: AnalyticsConfig, rng: np.random.Generator) -> Level:
    """Quantity-weighted geometric mean of price / reference, with median and quartiles."""
    if frame.empty:
        return Level(None, reason="no sales with a reference")
    row = cells.share_levels(_one(frame), cfg, rng).iloc[0]
    return level_from(row, share_detail(row))


def share_series(frame: pd.DataFrame, cfg: AnalyticsConfig) -> pd.Series:
    """Geometric-mean price share per period (NaN below minimum support)."""
    return cells.share_series(_one(frame), cfg).droplevel(0)


def share_band(frame: pd.DataFrame, cfg: AnalyticsConfig | None = None) -> pd.DataFrame:
    """Per period: geometric mean, quartiles and count of price shares (for plots and CSV);
    with ``cfg``, the geometric mean's clustered interval too (``lo``, ``hi``, ``clusters``)."""
    grouped = frame.assign(wl=frame["log_share"] * frame["quantity"]).groupby("period", observed=True)
    sums = grouped[["wl", "quantity"]].sum()
    quartiles = grouped["share"].quantile([0.25, 0.5, 0.75]).unstack()
    band = pd.DataFrame({
        "geo_mean": np.exp(sums["wl"] / sums["quantity"]), "q1": quartiles[0.25],
        "median": quartiles[0.5], "q3": quartiles[0.75], "n": grouped.size(),
    })
    if cfg is not None:
        levels = cells.share_levels(frame.assign(cell=frame["period"]), cfg, np.random.default_rng(cfg.seed))
        levels = levels.set_axis(pd.PeriodIndex(levels.index, freq=band.index.freq)).reindex(band.index)
        band["lo"], band["hi"] = levels["lo"].to_numpy(), levels["hi"].to_numpy()
        band["clusters"] = levels["clusters"].fillna(0).astype("int64").to_numpy()
    return band


def log_discount(share: Level) -> Level:
    """Discount to the reference in logs: ln(reference / price), from the share's geometric mean."""
    if share.value is None:
        return Level(None, n=share.n, clusters=share.clusters, reason=share.reason)
    ci = (-math.log(share.ci[1]), -math.log(share.ci[0])) if share.ci else None
    return Level(-math.log(share.value), ci, share.n, share.clusters, share.method)


def net_share(frame: pd.DataFrame, cfg: AnalyticsConfig, rng: np.random.Generator) -> tuple[Level, pd.Series]:
    """Price over (reference - transport cost from the farmer's market to the reference market)."""
    usable, dropped = cells.net_frame(_one(frame), cfg)
    if usable.empty:
        return Level(None, reason="no sale with a reference above its transport cost"), pd.Series(dtype="float64")
    row = cells.share_levels(usable, cfg, rng, "net_log_share").iloc[0]
    level = level_from(row, {"excluded_cost_above_reference": int(dropped.sum())})
    level.reason = net_note(cfg)
    return level, cells.share_series(usable, cfg, "net_log_share").droplevel(0)


def net_note(cfg: AnalyticsConfig) -> str:
    """What the net share means under the configured transport table."""
    return "no transport costs configured: equals the price share" if cfg.transport.empty else ""


def pass_through(frame: pd.DataFrame, cfg: AnalyticsConfig) -> Level:
    """Slope of ln(price) on ln(reference) with month effects, farmer-clustered interval."""
    if frame.empty:
        return Level(None, reason="no sales with a reference")
    return level_from(cells.pass_through_levels(_one(frame), cfg).iloc[0])


def pass_through_series(frame: pd.DataFrame, cfg: AnalyticsConfig) -> pd.Series:
    """Per period: slope of ln price on ln reference, NaN below support or without variation."""
    return cells.pass_through_series(_one(frame), cfg).droplevel(0)


def buyer_mix(frame: pd.DataFrame, cfg: AnalyticsConfig, rng: np.random.Generator) -> Level:
    """HHI of volume over buyer types, distinct types, and the share sold to each type."""
    if frame.empty:
        return Level(None, reason="no sales with a reference")
    row = cells.hhi_levels(_one(frame), cfg).iloc[0]
    return level_from(row, {"distinct_buyer_types": int(row["types"]), "volume_share": row["shares"]})


def hhi_series(frame: pd.DataFrame, cfg: AnalyticsConfig) -> pd.Series:
    """HHI over buyer types per period (NaN below support)."""
    return cells.hhi_series(_one(frame), cfg).droplevel(0)
