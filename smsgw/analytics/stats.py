"""Statistics shared by the indicators: trends with their tests, FDR control, cluster intervals."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TypedDict

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from smsgw.analytics.config import AnalyticsConfig, Effect

DAYS_PER_YEAR = 365.25
WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])


@dataclass(frozen=True)
class Trend:
    """A Theil-Sen slope with its interval and a (seasonal) Mann-Kendall p-value."""

    n_points: int
    slope_per_year: float | None = None
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    q_value: float | None = None
    test: str = ""
    state: str = "insufficient data"
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        """A JSON-able form."""
        return {
            "n_points": self.n_points, "slope_per_year": _num(self.slope_per_year),
            "ci": [_num(v) for v in self.ci] if self.ci else None, "p_value": _num(self.p_value),
            "q_value": _num(self.q_value), "test": self.test, "state": self.state, "reason": self.reason,
        }


def _num(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def mann_kendall(values: np.ndarray, seasons: np.ndarray) -> tuple[float, float, float]:
    """Seasonal Mann-Kendall: S summed over seasons, its tie-corrected variance, two-sided p."""
    n = len(values)
    # S counts increasing minus decreasing pairs, in time order, within each season.
    later = np.triu(np.ones((n, n), dtype=bool), 1) & (seasons[:, None] == seasons[None, :])
    s_total = float(np.sign(values[None, :] - values[:, None])[later].sum())
    _, sizes = np.unique(seasons, return_counts=True)
    order = np.lexsort((values, seasons))
    key_s, key_v = seasons[order], values[order]
    starts = np.flatnonzero(np.r_[True, (key_s[1:] != key_s[:-1]) | (key_v[1:] != key_v[:-1])])
    ties = np.diff(np.r_[starts, n])
    var_total = float((sizes * (sizes - 1) * (2 * sizes + 5)).sum() - (ties * (ties - 1) * (2 * ties + 5)).sum()) / 18
    if var_total <= 0:
        return s_total, var_total, 1.0
    z = (s_total - np.sign(s_total)) / math.sqrt(var_total)  # continuity correction
    return s_total, var_total, float(2 * stats.norm.sf(abs(z)))


def trend(series: pd.Series, cfg: AnalyticsConfig, reason: str = "") -> Trend:
    """Trend of a per-period series (PeriodIndex, NaN where a period lacked support)."""
    y = series.to_numpy(dtype="float64")
    keep = np.isfinite(y)
    n = int(keep.sum())
    if n < cfg.min_points:
        why = reason or f"{n} {cfg.freq}ly points with support, fewer than {cfg.min_points}"
        return Trend(n_points=n, reason=why)
    y = y[keep]
    start = series.index[keep].start_time
    years = (start - start[0]).days.to_numpy(dtype="float64") / DAYS_PER_YEAR
    if np.ptp(y) == 0:
        return Trend(n_points=n, slope_per_year=0.0, ci=(0.0, 0.0), p_value=1.0,
                     test="constant series", state="no detectable change")
    fit = stats.theilslopes(y, years, alpha=cfg.level)
    if years[-1] - years[0] >= 2:
        _, _, p = mann_kendall(y, start.month.to_numpy())
        test = "seasonal Mann-Kendall (seasons: calendar months)"
    else:
        _, _, p = mann_kendall(y, np.zeros(n, dtype=int))
        test = "Mann-Kendall (under two years of data: no seasonal test)"
    return Trend(n_points=n, slope_per_year=float(fit.slope), p_value=p, test=test,
                 ci=(float(fit.low_slope), float(fit.high_slope)))


def negated(t: Trend) -> Trend:
    """The trend of the negated series (same test, slope and interval flipped)."""
    if t.slope_per_year is None or t.ci is None:
        return t
    return replace(t, slope_per_year=-t.slope_per_year, ci=(-t.ci[1], -t.ci[0]))


def decide(trends: list[Trend], effects: list[Effect], levels: list[float], cfg: AnalyticsConfig) -> list[Trend]:
    """States for many cells at once: BH across the cells, then interval and size rules."""
    tested = [i for i, t in enumerate(trends) if t.p_value is not None and t.state != "no detectable change"]
    q = np.full(len(trends), np.nan)
    if tested:
        q[tested] = multipletests([trends[i].p_value for i in tested], alpha=cfg.alpha, method="fdr_bh")[1]
    decided = []
    for i, (t, effect, level) in enumerate(zip(trends, effects, levels, strict=True)):
        if i not in tested:
            decided.append(t)
            continue
        decided.append(replace(t, q_value=float(q[i]), **_state(t, effect, level, float(q[i]), cfg)))
    return decided


class _Verdict(TypedDict):
    state: str
    reason: str


def _state(t: Trend, effect: Effect, level: float, q: float, cfg: AnalyticsConfig) -> _Verdict:
    assert t.ci is not None and t.slope_per_year is not None
    lo, hi = (v * effect.good for v in t.ci)
    good_lo, good_hi = min(lo, hi), max(lo, hi)
    size = effect.size * abs(level) if effect.relative else effect.size
    change = t.slope_per_year * effect.good
    unit = f"{effect.size:.0%} of the level" if effect.relative else f"{effect.size:g}"
    if q >= cfg.alpha:
        return {"state": "no detectable change", "reason": f"FDR-adjusted p = {q:.3f}"}
    if good_lo > 0 and change >= size:
        return {"state": "improving", "reason": ""}
    if good_hi < 0 and -change >= size:
        return {"state": "worsening", "reason": ""}
    if good_lo > 0 or good_hi < 0:
        return {
            "state": "no detectable change",
            "reason": f"change smaller than the minimum important effect ({unit} a year)",
        }
    return {"state": "no detectable change", "reason": "interval includes zero"}


def bootstrap_weights(n_clusters: int, cfg: AnalyticsConfig, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Wild bootstrap multipliers (reps x clusters): Webb when very few clusters, else Rademacher."""
    if n_clusters < cfg.webb_below:
        return rng.choice(WEBB, size=(cfg.bootstrap_reps, n_clusters)), "wild cluster bootstrap (Webb weights)"
    signs = rng.integers(0, 2, size=(cfg.bootstrap_reps, n_clusters)) * 2.0 - 1.0
    return signs, "wild cluster bootstrap (Rademacher weights)"


def weighted_mean_interval(
    y: np.ndarray, w: np.ndarray, clusters: np.ndarray, cfg: AnalyticsConfig, rng: np.random.Generator,
) -> tuple[float, float, float, str, int]:
    """Weighted mean of ``y`` with a cluster bootstrap interval: (mean, lo, hi, method, clusters)."""
    codes, uniques = pd.factorize(clusters)
    g = len(uniques)
    mean = float(np.average(y, weights=w))
    if g < 2:
        return mean, math.nan, math.nan, "no interval (one cluster)", g
    tail = (1 - cfg.level) / 2
    if g >= cfg.few_clusters:
        sums = np.bincount(codes, weights=w * y, minlength=g)
        weights = np.bincount(codes, weights=w, minlength=g)
        # Resampling clusters with replacement: each replicate's multiplicity per cluster.
        counts = rng.multinomial(g, np.full(g, 1.0 / g), size=cfg.bootstrap_reps).astype("float64")
        reps = (counts @ sums) / (counts @ weights)
        lo, hi = np.quantile(reps, [tail, 1 - tail])
        return mean, float(lo), float(hi), "cluster bootstrap (clusters resampled)", g
    # Wild: perturb each cluster's weighted residual sum by one multiplier, with the
    # small-sample factor sqrt(G/(G-1)) that keeps intervals honest with few clusters.
    scores = np.bincount(codes, weights=w * (y - mean), minlength=g) / w.sum()
    multipliers, method = bootstrap_weights(g, cfg, rng)
    deviations = multipliers @ scores * math.sqrt(g / (g - 1))
    lo, hi = np.quantile(deviations, [tail, 1 - tail])
    return mean, mean - float(hi), mean - float(lo), method, g


def wilson(successes: int, total: int, level: float) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if total == 0:
        return math.nan, math.nan
    lo, hi = proportion_confint(successes, total, alpha=1 - level, method="wilson")
    return float(lo), float(hi)
