"""The bargaining report: every indicator per cell with its interval, trend and state."""
from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from smsgw.analytics import cells, data, dispersion, engagement, enrolment, groups, indicators, rollout
from smsgw.analytics.config import PRIMARY, STATES, AnalyticsConfig
from smsgw.analytics.indicators import Level
from smsgw.analytics.stats import Trend, decide, detectable, mde, negated, trend

DIMENSIONS = ("all", "commodity", "region", "market", "group")
SOURCE = ("smsgw database: farmers' sale reports, approved wholesale price observations, "
          "group orders and message logs")


@dataclass
class Inputs:
    """The frames a report is computed from (see data.py for their columns)."""

    sales: pd.DataFrame
    prices: pd.DataFrame
    markets: pd.DataFrame
    people: pd.DataFrame
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)
    members: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: dict[str, pd.DataFrame] | None = None
    retail: pd.DataFrame = field(default_factory=pd.DataFrame)
    source: str = SOURCE
    held: pd.DataFrame = field(default_factory=pd.DataFrame)  # wholesale prices not approved, per status
    rollouts: pd.DataFrame = field(default_factory=pd.DataFrame)  # rollout.load_assignments


def load_inputs(
    conn: sa.Connection, cfg: AnalyticsConfig, *, commodity_ids: list[int] | None = None,
    since: dt.date | None = None,
) -> Inputs:
    """Everything a report reads from the database (of ``commodity_ids``, from ``since``)."""
    # References may come from prices up to a week older than the first sale.
    price_start = since - dt.timedelta(days=cfg.window_days + cfg.max_age_days) if since else None
    return Inputs(
        sales=data.load_sales(conn, commodity_ids=commodity_ids, since=since),
        prices=data.load_prices(conn, commodity_ids=commodity_ids, since=price_start),
        markets=data.load_markets(conn), people=data.load_people(conn),
        orders=data.load_orders(conn, commodity_ids=commodity_ids), members=data.load_members(conn),
        events=data.load_engagement(conn, since),
        retail=data.load_prices(conn, kind="retail", commodity_ids=commodity_ids, since=since),
        held=data.load_held(conn, commodity_ids=commodity_ids, since=price_start),
        rollouts=rollout.load_assignments(conn),
    )


@dataclass
class Row:
    """One indicator in one cell, before the states are decided across cells."""

    indicator: str
    dimension: str
    cell: str
    level: Level
    trend: Trend
    mean_level: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-able form."""
        ci = [_num(v) for v in self.level.ci] if self.level.ci else None
        return {
            "indicator": self.indicator, "dimension": self.dimension, "cell": self.cell,
            "value": _num(self.level.value), "ci": ci, "n": self.level.n, "clusters": self.level.clusters,
            "method": self.level.method, "state": self.trend.state, "trend": self.trend.as_dict(),
            "reason": "; ".join(r for r in (self.level.reason, self.trend.reason) if r),
            "detail": self.level.detail,
        }


def _num(value: object) -> float | None:
    return None if value is None or not np.isfinite(float(value)) else float(value)  # type: ignore[arg-type]


def _by_cell(series: pd.Series) -> dict[object, pd.Series]:
    """Split a (cell, period) series into one series per cell, by position (no per-cell lookup)."""
    if series.empty:
        return {}
    series = series.sort_index(level=0, sort_remaining=True)
    cells_index = series.index.get_level_values(0)
    bounds = np.flatnonzero(np.r_[True, cells_index[1:] != cells_index[:-1], True])
    periods = series.index.get_level_values(1)
    return {
        cells_index[a]: pd.Series(series.to_numpy()[a:b], index=periods[a:b]) for a, b in itertools.pairwise(bounds)
    }


def _dimension_rows(dimension: str, frame: pd.DataFrame, cfg: AnalyticsConfig, rng: np.random.Generator) -> list[Row]:
    """The five sale-side indicators for every cell of one dimension."""
    framed = frame.assign(cell="all" if dimension == "all" else frame.get(dimension, ""))
    framed = framed[framed["cell"] != ""]
    if framed.empty:
        return []
    share, share_s = cells.share_levels(framed, cfg, rng), _by_cell(cells.share_series(framed, cfg))
    usable, dropped = cells.net_frame(framed, cfg)
    net = cells.share_levels(usable, cfg, rng, "net_log_share") if len(usable) else share.iloc[:0]
    # Without transport costs the net share is the share: its series and trend are reused.
    same_net = cfg.transport.empty
    net_s = share_s if same_net else _by_cell(cells.share_series(usable, cfg, "net_log_share")) if len(usable) else {}
    through, through_s = cells.pass_through_levels(framed, cfg), _by_cell(cells.pass_through_series(framed, cfg))
    hhi, hhi_s = cells.hhi_levels(framed, cfg), _by_cell(cells.hhi_series(framed, cfg))
    empty = pd.Series(dtype="float64")
    rows = []
    for cell in share.index:
        row = share.loc[cell]
        level = indicators.level_from(row, indicators.share_detail(row))
        series = share_s.get(cell, empty)
        share_trend = trend(series, cfg)
        if cell in net.index:
            net_level = indicators.level_from(
                net.loc[cell], {"excluded_cost_above_reference": int(dropped.get(cell, 0))}
            )
        else:
            net_level = Level(None, reason="no sale with a reference above its transport cost")
        net_level.reason = net_level.reason or indicators.net_note(cfg)
        net_series = net_s.get(cell, empty)
        mix = hhi.loc[cell]
        mean = float(series.mean()) if series.notna().any() else 0.0
        through_series, hhi_series = through_s.get(cell, empty), hhi_s.get(cell, empty)
        rows += [
            Row("price_share", dimension, str(cell), level, share_trend, mean),
            Row(
                "log_discount",
                dimension,
                str(cell),
                indicators.log_discount(level),
                negated(share_trend),
                -math.log(mean) if mean > 0 else 0.0,
            ),
            Row(
                "net_share",
                dimension,
                str(cell),
                net_level,
                share_trend if same_net else trend(net_series, cfg),
                float(net_series.mean()) if net_series.notna().any() else 0.0,
            ),
            Row(
                "pass_through",
                dimension,
                str(cell),
                indicators.level_from(through.loc[cell]),
                trend(through_series, cfg),
                float(through_series.mean()) if through_series.notna().any() else 0.0,
            ),
            Row(
                "buyer_hhi",
                dimension,
                str(cell),
                indicators.level_from(mix, {"distinct_buyer_types": int(mix["types"]), "volume_share": mix["shares"]}),
                trend(hhi_series, cfg),
                float(hhi_series.mean()) if hhi_series.notna().any() else 0.0,
            ),
        ]
    return rows


def _comparison(indicator: str, level: Level, cfg: AnalyticsConfig) -> Row:
    """A row whose state is read from its interval (a comparison, not a trend)."""
    if level.value is None or level.ci is None or level.clusters < cfg.min_clusters:
        why = level.reason or f"{level.clusters} clusters, fewer than {cfg.min_clusters}"
        return Row(indicator, "all", "all", level, Trend(0, reason=why))
    size = cfg.effects["enrolment_effect"].size
    lo, hi = level.ci
    state = ("improving" if lo > 0 and level.value >= size else "worsening" if hi < 0 and -level.value >= size
             else "no detectable change")
    smallest = mde((hi - lo) / 2, cfg.level)
    reason = detectable(smallest).removeprefix("; ") if state == "no detectable change" else ""
    return Row(indicator, "all", "all", level, Trend(0, test="interval of the comparison", state=state,
                                                     reason=reason, mde_per_year=smallest))


def _single(indicator: str, level: Level, series: pd.Series | None, cfg: AnalyticsConfig) -> Row:
    if series is None:
        return Row(indicator, "all", "all", level, Trend(0, reason="one figure for the selection, no series over time"))
    return Row(
        indicator, "all", "all", level, trend(series, cfg), float(series.mean()) if series.notna().any() else 0.0
    )


def bargaining(inputs: Inputs, cfg: AnalyticsConfig, today: pd.Timestamp) -> dict[str, Any]:
    """The whole bargaining report as plain data (render with ``render_text``/``render_csv``)."""
    rng = np.random.default_rng(cfg.seed)
    frame, excluded = indicators.prepare(inputs.sales, inputs.prices, inputs.markets, inputs.people, cfg)
    rows: list[Row] = []
    for dimension in DIMENSIONS:
        rows += _dimension_rows(dimension, frame, cfg, rng)
    orders = inputs.orders
    premiums = pd.DataFrame()
    if len(orders):
        premiums = groups.order_premiums(orders, frame, inputs.members, inputs.prices, inputs.markets, cfg)
        rows.append(
            _comparison("group_premium_reference", groups.premium_level(premiums, "premium_ref", cfg, rng), cfg)
        )
        rows.append(
            _comparison("group_premium_members", groups.premium_level(premiums, "premium_members", cfg, rng), cfg)
        )
        rows.append(_single("group_delivery_rate", groups.delivery_rate(orders, cfg), None, cfg))
    rows.append(_single("group_volume_share", groups.group_volume(frame, cfg, rng), None, cfg))
    if inputs.events is not None:
        ev = inputs.events
        rows.append(
            _single(
                "active_subscribers",
                engagement.active_subscribers(ev, inputs.sales, inputs.people, today, cfg),
                None,
                cfg,
            )
        )
        rows.append(_single("message_delivery_rate", *engagement.message_delivery(ev, cfg), cfg))
        rows.append(_single("informed_sales", *engagement.informed_sales(frame, ev, cfg, rng), cfg))
        rows.append(
            _single("sale_reporting_rate", *engagement.reporting_rate(inputs.sales, inputs.people, today, cfg), cfg)
        )
        rows.append(_single("ussd_dropoff", engagement.ussd_dropoff(ev, cfg), None, cfg))
    effects = [cfg.effects.get(r.indicator, cfg.effects[PRIMARY]) for r in rows]
    trends = decide([r.trend for r in rows], effects, [r.mean_level for r in rows], cfg)
    for row, decided in zip(rows, trends, strict=True):
        row.trend = decided
    effect = enrolment.estimate(frame, cfg, rng)
    designs = rollout.effects(frame, inputs.people, inputs.rollouts, cfg, rng) if len(inputs.rollouts) else []
    states = {s: sum(r.trend.state == s for r in rows) + (effect.state == s) for s in STATES}
    market, tables = _market_side(inputs, cfg, today)
    return {
        "title": "Is the farmers' bargaining position improving?",
        "primary_indicator": PRIMARY,
        "primary_definition": "price received / reference wholesale price (same commodity, grade, unit and currency; "
        f"median over the sale day and {cfg.window_days} days before), quantity-weighted geometric mean",
        "source": inputs.source,
        "today": today.date().isoformat(),
        "settings": {
            "freq": cfg.freq,
            "min_points": cfg.min_points,
            "min_sales": cfg.min_sales,
            "min_clusters": cfg.min_clusters,
            "level": cfg.level,
            "fdr": cfg.alpha,
            "window_days": cfg.window_days,
            "max_age_days": cfg.max_age_days,
            "transport_costs": "none configured: net share equals share"
            if cfg.transport.empty
            else f"{len(cfg.transport)} market pairs",
        },
        "sales": {
            "total": len(inputs.sales),
            "with_reference": len(frame),
            "excluded": excluded,
            "reference_from_nearest_market": int((frame["ref_source"] == "nearest market").sum()) if len(frame) else 0,
        },
        "states": states,
        "rows": [r.as_dict() for r in rows],
        "periods": _periods(frame, cfg),
        "enrolment": _effect_dict(effect),
        "rollouts": [{**{k: v for k, v in d.items() if k != "effect"}, "effect": _effect_dict(d["effect"])}
                     for d in designs],
        "market": market,
        "series": {
            "share_band": indicators.share_band(frame, cfg) if len(frame) else pd.DataFrame(),
            "premiums": premiums,
            "event_study": effect.event_study,
            "dispersion": tables,
        },
    }


def _periods(frame: pd.DataFrame, cfg: AnalyticsConfig) -> list[dict[str, object]]:
    """The primary indicator per period over all sales (the series behind its trend)."""
    if frame.empty:
        return []
    band = indicators.share_band(frame)
    labels = dispersion.period_label(band.index, cfg.freq)
    return [{"period": label, "geo_mean": _num(r.geo_mean), "q1": _num(r.q1), "median": _num(r.median),
             "q3": _num(r.q3), "n": int(r.n), "enough": bool(r.n >= cfg.min_sales)}
            for label, r in zip(labels, band.itertuples(), strict=True)]


def _effect_dict(effect: enrolment.EnrolmentEffect) -> dict[str, object]:
    study = effect.event_study
    return {
        "effect_pct": _num(effect.effect_pct), "ci_pct": [_num(v) for v in effect.ci_pct] if effect.ci_pct else None,
        "state": effect.state, "reason": effect.reason, "method": effect.method, "clusters": effect.clusters,
        "treated_farmers": effect.treated_farmers, "control_farmers": effect.control_farmers,
        "post_sales": effect.post_sales, "cohorts": effect.cohorts,
        "mde_pct": _num(effect.mde_pct), "pre_trend": {k: _num(v) if isinstance(v, float) else v
                                                       for k, v in effect.pre_trend.items()},
        "event_study": [{"event": int(r.event), "effect": _num(r.effect), "lo": _num(r.lo), "hi": _num(r.hi),
                         "treated_sales": int(r.treated_sales)} for r in study.itertuples()] if len(study) else [],
    }


def _market_side(
    inputs: Inputs, cfg: AnalyticsConfig, today: pd.Timestamp
) -> tuple[list[dict[str, object]], dict[str, pd.DataFrame]]:
    out: list[dict[str, object]] = []
    tables, raw, levels = {}, [], []
    homes = inputs.people["home_market"] if "home_market" in inputs.people else pd.Series(dtype="object")
    served = {str(m) for m in pd.concat([homes, inputs.sales.get("market", pd.Series(dtype="object"))]).dropna()
              if str(m)}
    for commodity, prices in inputs.prices.groupby("commodity", sort=True):
        series, excluded = dispersion.choose_series(prices)
        table = dispersion.dispersion_table(series, cfg)
        tables[str(commodity)] = table
        raw.append(trend(table["cv"], cfg))
        levels.append(float(table["cv"].mean()) if table["cv"].notna().any() else 0.0)
        retail = inputs.retail[inputs.retail["commodity"] == commodity] if len(inputs.retail) else inputs.retail
        if len(inputs.held):
            held = inputs.held[inputs.held["commodity"] == commodity]
            for status, label in (("pending", dispersion.HELD), ("rejected", dispersion.REJECTED)):
                rows = int(held.loc[held["status"] == status, "rows"].sum())
                if rows:
                    excluded[label] = excluded.get(label, 0) + rows
        out.append({
            "commodity": str(commodity), "now": dispersion.current_dispersion(series, today, cfg),
            "mean_cv": _num(table["cv"].mean()) if table["cv"].notna().any() else None,
            "seasonal_amplitude": dispersion.seasonal_amplitude(series),
            "retail_margin": dispersion.retail_margin(series, retail) if len(retail) else {"value": None, "n": 0},
            "rows_excluded": excluded,
            "comparison": dispersion.served_comparison(series, served, cfg),
        })
    # One false discovery rate across the commodities' dispersion trends.
    decided = decide(raw, [cfg.effects["dispersion_cv"]] * len(raw), levels, cfg)
    for item, result in zip(out, decided, strict=True):
        item["trend"] = result.as_dict()
    return out, tables
