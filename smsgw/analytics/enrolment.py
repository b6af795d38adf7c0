"""Effect of enrolment on the price share: staggered before/after against not-yet-enrolled farmers.

For each enrolment-month cohort g and event month e (from ``-event_before`` to
``event_after``), each farmer's outcome is the month's mean log price share minus that
farmer's mean over the ``event_before`` months before g. ATT(g, e) is the treated
farmers' mean of that difference minus the mean of farmers not enrolled by then (never
enrolled, or enrolling after both g and the month), each farmer weighted by the month's
sales. The effect is the average of ATT(g, e >= 1) weighted by the cohort's sales in
that month: the enrolment month itself (e = 0) mixes sales before and after the day, so
it is shown in the event study but left out of the effect. Leads (e < 0) are the
pre-trend check: the leads are tested jointly (Wald test that they are equal, with the
bootstrap covariance at the effect's cluster level, referred to F(k - 1, G - 1)); when it
rejects, no verdict (improving, worsening, no change) is given. No two-way fixed-effects regression:
with staggered timing it compares late enrollees with early ones already treated.
Intervals come from a cluster bootstrap by village (producer group where no village is known,
else the farmer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import f as f_dist
from scipy.stats import t as t_dist

from smsgw.analytics import cells
from smsgw.analytics.config import AnalyticsConfig
from smsgw.analytics.stats import bootstrap_weights, detectable, mde

REPLICATE_BLOCK = 100  # bootstrap replicates drawn and summed together


class _Counts(TypedDict):
    """The numbers behind an estimate, reported with it."""

    clusters: int
    treated_farmers: int
    control_farmers: int
    post_sales: int
    cohorts: int


@dataclass
class EnrolmentEffect:
    """The enrolment effect in percent with its interval, event study and the counts behind it."""

    effect_pct: float | None
    ci_pct: tuple[float, float] | None
    state: str
    reason: str = ""
    method: str = ""
    clusters: int = 0
    treated_farmers: int = 0
    control_farmers: int = 0
    post_sales: int = 0
    cohorts: int = 0
    event_study: pd.DataFrame = field(default_factory=pd.DataFrame)
    pre_trend: dict[str, Any] = field(default_factory=dict)
    mde_pct: float | None = None


def _cluster_key(people: pd.DataFrame) -> pd.Series:
    """Village, else producer group, else the farmer alone (one value per farmer row): the
    level of the level intervals too (``cells.cluster_key``)."""
    return cells.cluster_key(people)


def _stack(frame: pd.DataFrame, cfg: AnalyticsConfig) -> pd.DataFrame:
    """One row per (cohort, farmer, month) in each cohort's window with the farmer's role."""
    t = (frame["day"].dt.year * 12 + frame["day"].dt.month - 1).rename("t")
    weighted = (frame["log_share"] * frame["quantity"]).rename("wl")
    panel = pd.concat([frame["farmer"], t, weighted, frame["quantity"]], axis=1).groupby(["farmer", "t"]).agg(
        wl=("wl", "sum"), q=("quantity", "sum"), w=("wl", "size")).reset_index()
    farmers = frame.drop_duplicates("farmer").set_index("farmer")
    enrolled = farmers["enrolled"]
    cohort = (enrolled.dt.year * 12 + enrolled.dt.month - 1).astype("float64")
    panel["y"] = panel["wl"] / panel["q"]
    panel["cohort"] = panel["farmer"].map(cohort)
    panel["cluster"] = panel["farmer"].map(_cluster_key(farmers.reset_index()).set_axis(farmers.index))
    cohorts = np.unique(cohort.dropna().to_numpy())
    # Each farmer-month belongs to the windows of cohorts g = t - e for e in the event range,
    # as the cohort's enrolled farmer or as a farmer not enrolled by then. One event time at
    # a time, keeping only those rows: the full repeat would hold every farmer-month once per
    # event time (several GB for a million sales).
    t_values, farmer_cohort = panel["t"].to_numpy(), panel["cohort"].to_numpy()
    parts = []
    for e in range(-cfg.event_before, cfg.event_after + 1):
        g = (t_values - e).astype("float64")
        treated = farmer_cohort == g
        control = np.isnan(farmer_cohort) | (farmer_cohort > np.maximum(t_values, g))
        keep = np.isin(g, cohorts) & (treated | control)
        parts.append(panel[keep].assign(e=e, g=g[keep], treated=treated[keep]))
    # Farmer-month order, then event time: the order the sums below have always been taken in.
    stack = pd.concat(parts).rename_axis("row").sort_values(["row", "e"], kind="stable").reset_index(drop=True)
    pre = stack[stack["e"] < 0].assign(wy=lambda f: f["y"] * f["w"]).groupby(["g", "farmer"])[["wy", "w"]].sum()
    base = (pre["wy"] / pre["w"]).rename("base")
    stack = stack.join(base, on=["g", "farmer"], how="inner")
    stack["d"] = stack["y"] - stack["base"]
    # Keep only cohort-months where both roles are present.
    roles = stack.groupby(["g", "e"])["treated"].agg(["any", "all"])
    both = roles[roles["any"] & ~roles["all"]].reset_index()[["g", "e"]]
    return stack.merge(both, on=["g", "e"])


def _cell_arrays(stack: pd.DataFrame, clusters: pd.Index, dense: bool) -> dict[str, Any]:
    """Per (cell, cluster): sums of w*d and w for treated and controls.

    With many clusters (each farmer is one when there are no groups or villages) most
    cells hold few of them: the grids are then sparse, or they would take gigabytes.
    """
    cells = stack[["g", "e"]].drop_duplicates().sort_values(["g", "e"]).reset_index(drop=True)
    cell_id = cells.reset_index().set_index(["g", "e"])["index"]
    rows = cell_id.reindex(pd.MultiIndex.from_frame(stack[["g", "e"]])).to_numpy()
    cols = clusters.get_indexer(stack["cluster"])
    shape = (len(cells), len(clusters))
    out: dict[str, Any] = {"e": cells["e"].to_numpy()}
    for role, mask in (("t", stack["treated"].to_numpy()), ("c", ~stack["treated"].to_numpy())):
        for name, values in (("s", (stack["w"] * stack["d"]).to_numpy()), ("w", stack["w"].to_numpy(dtype="float64"))):
            grid = sparse.coo_array((values[mask], (rows[mask], cols[mask])), shape=shape).tocsr()
            out[role + name] = grid.toarray() if dense else grid
    return out


def _row_sums(grid: Any) -> np.ndarray:
    """Sums over clusters, one per cell (dense or sparse grid)."""
    return np.asarray(grid.sum(axis=1)).ravel()


def _estimates(ts: np.ndarray, tw: np.ndarray, cs: np.ndarray, cw: np.ndarray, e: np.ndarray) -> np.ndarray:
    """ATT overall (post cells) then per event time, from cell sums (last axis: cells)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        att = ts / tw - cs / cw
    valid = np.isfinite(att)
    weight = np.where(valid, tw, 0.0)
    att = np.where(valid, att, 0.0)
    columns = []
    for mask in [e >= 1] + [e == k for k in np.unique(e)]:
        num, den = (att * weight)[..., mask].sum(axis=-1), weight[..., mask].sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            columns.append(num / den)
    return np.stack(columns, axis=-1)


def estimate(frame: pd.DataFrame, cfg: AnalyticsConfig, rng: np.random.Generator | None = None) -> EnrolmentEffect:
    """The enrolment effect on the price share from sales with a reference (see module doc)."""
    rng = rng or np.random.default_rng(cfg.seed)
    if frame.empty or frame["enrolled"].notna().sum() == 0:
        return EnrolmentEffect(None, None, "insufficient data", reason="no enrolled farmer with sales")
    stack = _stack(frame, cfg)
    post = stack[stack["treated"] & (stack["e"] >= 1)]
    clusters = pd.Index(pd.unique(stack["cluster"]))
    counts: _Counts = {
        "clusters": len(clusters),
        "treated_farmers": int(stack.loc[stack["treated"], "farmer"].nunique()),
        "control_farmers": int(stack.loc[~stack["treated"], "farmer"].nunique()),
        "post_sales": int(post["w"].sum()),
        "cohorts": int(post["g"].nunique()),
    }
    if post.empty:
        return EnrolmentEffect(
            None,
            None,
            "insufficient data",
            reason="no cohort has both enrolled and not-yet-enrolled farmers before and after",
            **counts,
        )
    treated_sales = stack[stack["treated"]].groupby("e")["w"].sum()
    arrays = _cell_arrays(stack, clusters, dense=len(clusters) < cfg.few_clusters)
    del stack, post  # the bootstrap below needs only the cell sums
    e = arrays["e"]
    ts, tw, cs, cw = (_row_sums(arrays[k]) for k in ("ts", "tw", "cs", "cw"))
    point = _estimates(ts, tw, cs, cw, e)
    draws, method = _bootstrap(arrays, point, cfg, rng)
    tail = (1 - cfg.level) / 2
    lo, hi = _quantiles(draws, tail)
    events = np.unique(e)
    study = pd.DataFrame({"event": events, "effect": point[1:], "lo": lo[1:], "hi": hi[1:],
                          "treated_sales": [int(treated_sales.get(k, 0)) for k in events]})
    effect, ci = point[0], (lo[0], hi[0])
    pre = _pre_trends(frame, cfg, rng)
    smallest = math.expm1(mde((ci[1] - ci[0]) / 2, cfg.level)) * 100 if np.isfinite(ci[1] - ci[0]) else None
    state, reason = _state(effect, ci, counts, cfg)
    if state == "no detectable change":
        reason += detectable(smallest, "%")
    if pre.get("rejects") and state != "insufficient data":
        state, reason = "insufficient data", (
            f"refused: the pre-trend test rejects parallel trends (p = {pre['p_value']:.3f}): enrolled and "
            "comparison farmers were already drifting apart before enrolment, so the difference after it "
            "is not the effect of enrolment")
    return EnrolmentEffect(math.expm1(effect) * 100, (math.expm1(ci[0]) * 100, math.expm1(ci[1]) * 100), state,
                           reason, method, event_study=study, pre_trend=pre, mde_pct=smallest, **counts)


def _pre_trends(frame: pd.DataFrame, cfg: AnalyticsConfig, rng: np.random.Generator) -> dict[str, Any]:
    """The pre-trend test over ``pre_trend_months`` leads, with its lead estimates.

    The same cohorts, comparisons and cluster bootstrap as the effect, over a longer window
    before enrolment (each farmer's baseline: their mean over that window).
    """
    window = replace(cfg, event_before=max(cfg.pre_trend_months, cfg.event_before), event_after=0)
    stack = _stack(frame, window)
    if stack.empty:
        return {"test": "", "p_value": None, "rejects": False, "leads": 0,
                "reason": "no cohort with comparison farmers before enrolment: pre-trends not testable",
                "estimates": []}
    # Only leads with enough treated clusters: a lead carried by two or three enrolled
    # villages has a cluster-robust variance far too small (over-rejection), and the early
    # cohorts have few months before enrolment.
    treated = stack[stack["treated"]].groupby("e")["cluster"].nunique()
    supported = treated[treated >= cfg.min_clusters].index
    stack = stack[stack["e"].isin(supported)]
    if stack.empty:
        return {"test": "", "p_value": None, "rejects": False, "leads": 0, "estimates": [],
                "reason": f"no month before enrolment with {cfg.min_clusters}+ enrolled clusters: "
                          "pre-trends not testable"}
    clusters = pd.Index(pd.unique(stack["cluster"]))
    arrays = _cell_arrays(stack, clusters, dense=len(clusters) < cfg.few_clusters)
    e = arrays["e"]
    ts, tw, cs, cw = (_row_sums(arrays[k]) for k in ("ts", "tw", "cs", "cw"))
    point = _estimates(ts, tw, cs, cw, e)
    draws, _ = _bootstrap(arrays, point, cfg, rng)
    lo, hi = _quantiles(draws, (1 - cfg.level) / 2)
    events = np.unique(e)
    result = pre_trend_test(point[1:], draws[:, 1:], events, len(clusters), cfg)
    result["estimates"] = [
        {"event": int(k), "effect": float(v), "lo": float(a), "hi": float(b)}
        for k, v, a, b in zip(events, point[1:], lo[1:], hi[1:], strict=True) if k < 0 and np.isfinite(v)
    ]
    return result


def pre_trend_test(point: np.ndarray, draws: np.ndarray, events: np.ndarray, clusters: int,
                   cfg: AnalyticsConfig) -> dict[str, Any]:
    """Joint test that the leads (event times before enrolment) are equal.

    The leads are deviations from the farmers' own pre-enrolment mean, so their weighted sum
    is about zero: parallel trends mean they are all equal (zero). The k - 1 differences from
    the last lead are tested with a Wald statistic W using the covariance of the bootstrap
    replicates (clustered like the effect), scaled as Hotelling's T^2: (G - q) / (q (G - 1)) W
    referred to F(q, G - q), q = k - 1; and the leads' least-squares slope on t(G - 1).
    Each at half the level (Bonferroni).
    """
    leads = [i for i, k in enumerate(events) if k < 0 and np.isfinite(point[i])]
    name = "joint Wald test of equal leads (cluster bootstrap covariance, Hotelling F)"
    if len(leads) < 2:
        return {"test": name, "p_value": None, "rejects": False, "leads": len(leads),
                "reason": "fewer than two months before enrolment with an estimate: pre-trends not testable"}
    last = leads[-1]
    contrast = point[leads[:-1]] - point[last]
    reps = draws[:, leads[:-1]] - draws[:, [last]]
    reps = reps[np.isfinite(reps).all(axis=1)]
    if len(reps) < 10 or clusters < 2:
        return {"test": name, "p_value": None, "rejects": False, "leads": len(leads),
                "reason": "too few clusters or replicates: pre-trends not testable"}
    cov = np.atleast_2d(np.cov(reps, rowvar=False))
    values = np.linalg.eigvalsh(cov)
    rank = int((values > values.max() * 1e-9).sum()) if values.max() > 0 else 0
    if rank == 0:
        return {"test": name, "p_value": None, "rejects": False, "leads": len(leads),
                "reason": "the leads do not vary across replicates: pre-trends not testable"}
    wald = float(contrast @ np.linalg.pinv(cov, hermitian=True) @ contrast)
    # Hotelling's small-sample scaling: a covariance estimated from G clusters makes W too
    # large when the leads are many; (G - q) / (q (G - 1)) W is F(q, G - q).
    p_joint = (float(f_dist.sf(wald * (clusters - rank) / (rank * (clusters - 1)), rank, clusters - rank))
               if clusters > rank else 1.0)
    # A drift shows most clearly as a slope across the leads: its least-squares slope per
    # month, with the same replicates, on t(G - 1). Each test at half the level (Bonferroni).
    times = events[leads].astype("float64")
    weights = (times - times.mean()) / ((times - times.mean()) ** 2).sum()
    slope = float(weights @ point[leads])
    slopes = draws[:, leads] @ weights
    slopes = slopes[np.isfinite(slopes)]
    se = float(np.std(slopes, ddof=1))
    p_slope = float(2 * t_dist.sf(abs(slope) / se, max(clusters - 1, 1))) if se > 0 else 1.0
    p = min(1.0, 2 * min(p_joint, p_slope))
    return {"test": name + "; and slope of the leads, t(G-1); Bonferroni", "statistic": wald, "df": rank,
            "p_joint": p_joint, "slope_per_month": slope, "p_slope": p_slope, "p_value": p,
            "rejects": p < cfg.alpha, "leads": len(leads), "reason": ""}


def _bootstrap(arrays: dict[str, np.ndarray], point: np.ndarray, cfg: AnalyticsConfig,
               rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Replicates of (overall, per-event) effects: clusters resampled, or wild when few."""
    g = arrays["ts"].shape[1]
    if g >= cfg.few_clusters:
        # Each replicate's multiplicity per cluster, a block of replicates at a time: a
        # reps x clusters matrix at once is large when every farmer is a cluster.
        draws = []
        for start in range(0, cfg.bootstrap_reps, REPLICATE_BLOCK):
            size = min(REPLICATE_BLOCK, cfg.bootstrap_reps - start)
            m = rng.multinomial(g, np.full(g, 1.0 / g), size=size).astype("float64")
            ts, tw, cs, cw = (np.asarray(arrays[k] @ m.T).T for k in ("ts", "tw", "cs", "cw"))
            draws.append(_estimates(ts, tw, cs, cw, arrays["e"]))
        return np.concatenate(draws), "cluster bootstrap (clusters resampled)"
    if g < 2:
        return np.full((1, len(point)), np.nan), "no interval (one cluster)"
    # Wild: every estimate is linear in the farmers' differences given the weights, so a
    # replicate adds, per cluster, v_c times the cluster's weighted residual score. Treated
    # residuals are taken around (control mean + common effect), not the cohort's own mean:
    # a cohort is often one village, whose own mean would zero out its shared shocks.
    tw, cw = _row_sums(arrays["tw"]), _row_sums(arrays["cw"])
    with np.errstate(invalid="ignore", divide="ignore"):
        t_mean, c_mean = _row_sums(arrays["ts"]) / tw, _row_sums(arrays["cs"]) / cw
    valid = np.isfinite(t_mean - c_mean)
    c_fit = np.nan_to_num(c_mean)[:, None]
    c_res = np.where(valid[:, None], arrays["cs"] - arrays["cw"] * c_fit, 0.0)
    e = arrays["e"]
    scores = []
    for effect, mask in zip(point, [e >= 1] + [e == k for k in np.unique(e)], strict=True):
        weight = np.where(valid & mask, tw, 0.0)
        total = weight.sum()
        if total <= 0:
            scores.append(np.zeros(g))
            continue
        t_res = np.where(valid[:, None], arrays["ts"] - arrays["tw"] * (c_fit + effect), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            cell_score = np.nan_to_num(t_res / tw[:, None]) - np.nan_to_num(c_res / cw[:, None])
        scores.append((weight[:, None] * cell_score).sum(0) / total)
    v, method = bootstrap_weights(g, cfg, rng)
    deviations = v @ np.stack(scores, axis=1) * math.sqrt(g / (g - 1))
    return point[None, :] - deviations, method


def _quantiles(draws: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bounds per column; NaN where no replicate could estimate the column."""
    lo, hi = np.full(draws.shape[1], np.nan), np.full(draws.shape[1], np.nan)
    usable = np.isfinite(draws).any(axis=0)
    if usable.any():
        lo[usable], hi[usable] = np.nanquantile(draws[:, usable], [tail, 1 - tail], axis=0)
    return lo, hi


def _state(effect: float, ci: tuple[float, float], counts: _Counts, cfg: AnalyticsConfig) -> tuple[str, str]:
    if counts["clusters"] < cfg.min_clusters:
        return "insufficient data", f"{counts['clusters']} clusters, fewer than {cfg.min_clusters}"
    if counts["post_sales"] < cfg.min_sales:
        return "insufficient data", f"{counts['post_sales']} sales after enrolment, fewer than {cfg.min_sales}"
    size = cfg.effects["enrolment_effect"].size
    if ci[0] > 0 and effect >= size:
        return "improving", ""
    if ci[1] < 0 and -effect >= size:
        return "worsening", ""
    if ci[0] > 0 or ci[1] < 0:
        return "no detectable change", "effect smaller than the minimum important effect"
    return "no detectable change", "interval includes zero"
