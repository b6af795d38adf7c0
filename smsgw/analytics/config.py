"""Settings of the bargaining analytics: windows, minimum support, important effects, transport costs."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

STATES = ("improving", "worsening", "no detectable change", "insufficient data")
PRIMARY = "price_share"


@dataclass(frozen=True)
class Effect:
    """The smallest yearly change worth calling a change, and which direction is good.

    ``relative`` effects are fractions of the indicator's mean level (dispersion falls by
    5 % a year), absolute ones are in the indicator's own units (2 points of price share).
    """

    size: float
    good: int  # +1 when a higher value is better for farmers, -1 when lower is better
    relative: bool = False


DEFAULT_EFFECTS: dict[str, Effect] = {
    "price_share": Effect(0.02, +1),
    "log_discount": Effect(0.03, -1),
    "net_share": Effect(0.02, +1),
    "pass_through": Effect(0.05, +1),
    "buyer_hhi": Effect(0.05, -1),
    "dispersion_cv": Effect(0.05, -1, relative=True),
    "enrolment_effect": Effect(0.02, +1),
}


@dataclass(frozen=True, eq=False)
class AnalyticsConfig:
    """Every threshold the module uses, in one place so a report can state them."""

    window_days: int = 3  # reference: the sale day and this many days before
    max_age_days: int = 7  # no reference when the latest price is older than this
    freq: str = "month"  # trend period: "month" or "week"
    min_points: int = 12  # periods needed for a trend
    min_sales: int = 30  # sales needed in a period (and in a cell) to use it
    min_clusters: int = 8  # clusters needed for an interval to be trusted
    few_clusters: int = 30  # below this, wild cluster bootstrap instead of resampling clusters
    webb_below: int = 12  # below this many clusters, Webb's six-point weights, else Rademacher
    bootstrap_reps: int = 999
    level: float = 0.95
    alpha: float = 0.05  # false discovery rate across cells (Benjamini-Hochberg)
    seed: int = 20240301
    effects: dict[str, Effect] = field(default_factory=lambda: dict(DEFAULT_EFFECTS))
    # Enrolment: periods compared before and after each cohort's enrolment month.
    event_before: int = 3
    event_after: int = 3
    # Pre-trend test: the months before enrolment whose leads are tested (each against the
    # farmers' own mean over them): more leads, more power against a slow drift.
    pre_trend_months: int = 12
    informed_days: int = 3  # a price query or bulletin this many days before a sale informs it
    active_days: int = 30
    # Transport cost per base unit between a farmer's market and the reference market:
    # columns from_market, to_market, cost, currency. Empty: net share equals share.
    transport: pd.DataFrame = field(default_factory=lambda: empty_transport())

    @property
    def period_code(self) -> str:
        """The pandas period alias of ``freq``."""
        return {"month": "M", "week": "W-SUN"}[self.freq]


def empty_transport() -> pd.DataFrame:
    """A transport table with no rows."""
    return pd.DataFrame({
        "from_market": pd.Series(dtype="object"), "to_market": pd.Series(dtype="object"),
        "cost": pd.Series(dtype="float64"), "currency": pd.Series(dtype="object"),
    })


def read_transport(path: Path) -> pd.DataFrame:
    """Read a transport cost table (CSV: from_market,to_market,cost,currency), both directions."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    table = pd.DataFrame(rows, columns=["from_market", "to_market", "cost", "currency"])
    table["cost"] = pd.to_numeric(table["cost"], errors="raise").astype("float64")
    # A cost quoted one way holds the other way too unless the table says otherwise.
    reverse = table.rename(columns={"from_market": "to_market", "to_market": "from_market"})
    both = pd.concat([table, reverse], ignore_index=True)
    return both.drop_duplicates(["from_market", "to_market", "currency"], keep="first")
