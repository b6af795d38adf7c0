"""Figures for the report, rendered on the server to SVG or PNG (no display, no network).

Each figure is built on a bare ``Figure`` (not pyplot), so web workers can draw at the
same time without sharing state, and each names its data source and what was left out.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

# No date in SVG/PNG metadata: the same data draws the same bytes.
_METADATA = {"svg": {"Date": None}, "png": {"Software": None}}


def _figure(title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    return fig, ax


def _footnote(fig: Figure, text: str) -> None:
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):  # every figure here is made by _figure
        engine.set(h_pad=0.1)
    fig.supxlabel(text, fontsize=7, color="0.35", wrap=True)


def render(fig: Figure, fmt: str = "svg") -> bytes:
    """The figure as SVG or PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, metadata=_METADATA[fmt], dpi=110)
    return buffer.getvalue()


def _x(index: pd.PeriodIndex) -> np.ndarray:
    return index.to_timestamp(how="start").to_numpy()


def _dates(ax: object) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)  # type: ignore[attr-defined]
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[attr-defined]


def _empty(ax: Any, message: str) -> None:
    """A message where the chart would be: no data, no axes to read."""
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=10, color="0.25",
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _period_label(index: pd.PeriodIndex) -> str:
    return "week" if index.freqstr.startswith("W") else "month"


def _trend_line(ax: Any, index: pd.PeriodIndex, trend: dict[str, Any] | None, level: float) -> None:
    """The Theil-Sen line of the report's trend, with its slope, interval and state."""
    if not trend or trend.get("slope_per_year") is None or trend.get("intercept") is None or not trend.get("start"):
        return
    start = pd.Timestamp(trend["start"])
    x = _x(index)
    years = (pd.DatetimeIndex(x) - start).days.to_numpy(dtype="float64") / 365.25
    y = trend["intercept"] + trend["slope_per_year"] * years
    ci = trend.get("ci") or [None, None]
    interval = f" [{ci[0]:+.3g}, {ci[1]:+.3g}]" if ci[0] is not None else ""
    ax.plot(x, y, color="0.15", linestyle="--", linewidth=1.2,
            label=f"trend {trend['slope_per_year']:+.3g}/yr{interval} ({level:.0%} interval): {trend['state']}")


def _counts(ax: Any, index: pd.PeriodIndex, counts: pd.Series, label: str) -> None:
    """How many markets (or sales) stand behind each period, as bars on a second axis."""
    twin = ax.twinx()
    twin.bar(_x(index), counts.to_numpy(), width=20 if _period_label(index) == "month" else 5, color="0.8",
             alpha=0.5, zorder=0)
    twin.set_ylabel(label, fontsize=8, color="0.4")
    twin.tick_params(axis="y", labelsize=7, colors="0.4")
    twin.set_ylim(0, max(float(counts.max()) * 3, 1.0))
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)


def price_share(band: pd.DataFrame, note: str, trend: dict[str, Any] | None = None, level: float = 0.95) -> Figure:
    """Geometric-mean price share per period with its interval, quartiles, sales and trend."""
    fig, ax = _figure("Farmer price share (price received / reference wholesale price)")
    if len(band):
        x = _x(band.index)
        ax.fill_between(x, band["q1"], band["q3"], alpha=0.2, label="middle half of sales (quartiles)")
        if "lo" in band:
            lo, hi = band["geo_mean"] - band["lo"], band["hi"] - band["geo_mean"]
            ax.errorbar(x, band["geo_mean"], yerr=[lo.fillna(0).clip(lower=0), hi.fillna(0).clip(lower=0)],
                        marker="o", capsize=2,
                        label=f"quantity-weighted geometric mean, {level:.0%} interval (clustered by village)")
        else:
            ax.plot(x, band["geo_mean"], marker="o", label="quantity-weighted geometric mean")
        _trend_line(ax, band.index, trend, level)
        _counts(ax, band.index, band["n"], "sales per period")
        ax.legend(fontsize=7, loc="lower left")
        _dates(ax)
        ax.set_xlabel(_period_label(band.index))
        ax.set_ylabel("share of reference price")
    else:
        _empty(ax, "No sale with a reference price yet: nothing to draw.")
    _footnote(fig, note)
    return fig


def dispersion(table: pd.DataFrame, commodity: str, note: str, trend: dict[str, Any] | None = None,
               level: float = 0.95) -> Figure:
    """CV and mean absolute log difference across markets per period, markets per period, trend."""
    fig, ax = _figure(f"Price dispersion across markets: {commodity}")
    if len(table) and table["cv"].notna().any():
        x = _x(table.index)
        ax.plot(x, table["cv"], marker="o", label="coefficient of variation")
        ax.plot(x, table["mean_abs_log_diff"], marker="s", label="mean |ln p_m - ln p_n| over market pairs")
        _trend_line(ax, table.index, trend, level)
        _counts(ax, table.index, table["n_markets"], "markets with a price")
        ax.legend(fontsize=7)
        _dates(ax)
        ax.set_xlabel(_period_label(table.index))
        ax.set_ylabel("dispersion across markets")
    elif len(table):
        _empty(ax, "No period has prices from 3 or more markets: dispersion cannot be measured.")
    else:
        _empty(ax, f"No approved price of {commodity} to compare across markets.")
    _footnote(fig, note)
    return fig


def event_study(study: pd.DataFrame, note: str, pre_trend: dict[str, Any] | None = None,
                level: float = 0.95) -> Figure:
    """Enrolment effect by month from enrolment (leads and lags), with intervals and the pre-trend test."""
    fig, ax = _figure("Price share around enrolment (enrolled minus not-yet-enrolled, logs)")
    longer = pd.DataFrame((pre_trend or {}).get("estimates") or [])
    if len(study) or len(longer):
        if len(longer):
            lo, hi = longer["effect"] - longer["lo"], longer["hi"] - longer["effect"]
            ax.errorbar(longer["event"] - 0.15, longer["effect"], yerr=[lo.fillna(0), hi.fillna(0)], fmt="s",
                        color="0.55", capsize=2, markersize=4,
                        label=f"leads of the pre-trend test, {level:.0%} interval")
        for part, colour, label in ((study[study["event"] < 0], "tab:orange", "leads (before enrolment)"),
                                    (study[study["event"] >= 0], "tab:blue", "lags (month 0 partly before)")):
            if len(part):
                lo, hi = part["effect"] - part["lo"], part["hi"] - part["effect"]
                ax.errorbar(part["event"], part["effect"], yerr=[lo.fillna(0), hi.fillna(0)], fmt="o", capsize=3,
                            color=colour, label=f"{label}, {level:.0%} interval")
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.axvline(-0.5, color="0.6", linestyle="--", linewidth=0.8)
        p = (pre_trend or {}).get("p_value")
        if p is not None:
            verdict = "rejects parallel trends: no verdict" if pre_trend and pre_trend.get("rejects") else "passes"
            ax.set_title(f"Price share around enrolment; pre-trend test p = {p:.3f} ({verdict})", fontsize=10)
        ax.legend(fontsize=7, loc="best")
        ax.set_xlabel("months from enrolment (0 = enrolment month, partly before)")
        ax.set_ylabel("difference in ln price share")
    else:
        _empty(ax, "No cohort with enrolled and not-yet-enrolled farmers: no event study.")
    _footnote(fig, note)
    return fig


def group_premium(premiums: pd.DataFrame, note: str) -> Figure:
    """Each fulfilled order's premium over the reference and over members' own sales."""
    fig, ax = _figure("Group orders: premium of the final price")
    if len(premiums):
        labels = [f"#{r.order_id} {r.commodity}" for r in premiums.itertuples()]
        y = np.arange(len(premiums))
        ax.barh(y - 0.2, np.expm1(premiums["premium_ref"]) * 100, height=0.4, label="over the reference")
        ax.barh(y + 0.2, np.expm1(premiums["premium_members"].fillna(0.0)) * 100, height=0.4,
                label="over members' own sales, same weeks")
        ax.set_yticks(y, labels, fontsize=8)
        ax.axvline(0, color="0.3", linewidth=0.8)
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
        ax.set_xlabel("premium of the final price, percent")
        ax.set_ylabel("group order")
    else:
        _empty(ax, "No fulfilled group sell order yet: no premium to draw.")
    _footnote(fig, note)
    return fig


def report_figures(report: dict[str, Any]) -> dict[str, Figure]:
    """Every figure of a bargaining report, by file stem."""
    sales, series = report["sales"], report["series"]
    level = float(report.get("settings", {}).get("level", 0.95))
    left_out = "; ".join(f"{v} {k}" for k, v in sales["excluded"].items()) or "none"
    base = f"Source: {report['source']}. Sales excluded: {left_out}."
    share_trend = next((row["trend"] for row in report["rows"]
                        if (row["indicator"], row["dimension"]) == ("price_share", "all")), None)
    enrolment = report["enrolment"]
    figures = {
        "price_share": price_share(series["share_band"], f"{base} {sales['with_reference']} sales with a reference.",
                                   share_trend, level),
        "event_study": event_study(series["event_study"], f"{base} State: {enrolment['state']}.",
                                   enrolment.get("pre_trend"), level),
        "group_premium": group_premium(series["premiums"], f"{base} Orders without a reference are not drawn."),
    }
    for commodity in series.get("dispersion", {}):
        figures[f"dispersion_{commodity}"] = dispersion_of(report, commodity)
    return figures


def dispersion_of(report: dict[str, Any], commodity: str) -> Figure:
    """The report's dispersion figure of one commodity, with its trend and rows left out."""
    level = float(report.get("settings", {}).get("level", 0.95))
    item: dict[str, Any] = next((m for m in report["market"] if m["commodity"] == commodity), {})
    other = "; ".join(f"{v} {k}" for k, v in item.get("rows_excluded", {}).items()) or "none"
    note = (f"Source: {report['source']} (approved wholesale prices). Rows excluded: {other}. "
            "Periods with fewer than 3 markets are not drawn.")
    return dispersion(report["series"]["dispersion"][commodity], commodity, note, item.get("trend"), level)


def svg(fig: Figure) -> str:
    """The figure as an SVG string (for embedding in a page)."""
    return render(fig, "svg").decode("utf-8")


def write(figures: dict[str, Figure], directory: Path, fmt: str = "svg") -> list[Path]:
    """Write each figure to ``directory/<stem>.<fmt>``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, fig in figures.items():
        path = directory / f"{stem}.{fmt}"
        path.write_bytes(render(fig, fmt))
        paths.append(path)
    return paths
