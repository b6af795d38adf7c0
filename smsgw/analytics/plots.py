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


def price_share(band: pd.DataFrame, note: str) -> Figure:
    """Geometric-mean price share per period with its interquartile band."""
    fig, ax = _figure("Farmer price share (price received / reference wholesale price)")
    if len(band):
        x = _x(band.index)
        ax.fill_between(x, band["q1"], band["q3"], alpha=0.25, label="middle half of sales (quartiles)")
        ax.plot(x, band["geo_mean"], marker="o", label="quantity-weighted geometric mean")
        ax.legend(fontsize=8, loc="lower left")
        _dates(ax)
    else:
        ax.text(0.5, 0.5, "no sales with a reference", ha="center", transform=ax.transAxes)
    ax.set_ylabel("share of reference")
    _footnote(fig, note)
    return fig


def dispersion(table: pd.DataFrame, commodity: str, note: str) -> Figure:
    """CV and mean absolute log difference across markets per period."""
    fig, ax = _figure(f"Price dispersion across markets: {commodity}")
    if len(table):
        x = _x(table.index)
        ax.plot(x, table["cv"], marker="o", label="coefficient of variation")
        ax.plot(x, table["mean_abs_log_diff"], marker="s", label="mean |ln p_m - ln p_n| over market pairs")
        ax.legend(fontsize=8)
        _dates(ax)
    ax.set_ylabel("dispersion")
    _footnote(fig, note)
    return fig


def event_study(study: pd.DataFrame, note: str) -> Figure:
    """Enrolment effect by month from enrolment, with intervals."""
    fig, ax = _figure("Price share around enrolment (enrolled minus not-yet-enrolled, logs)")
    if len(study):
        lo, hi = study["effect"] - study["lo"], study["hi"] - study["effect"]
        ax.errorbar(study["event"], study["effect"], yerr=[lo.fillna(0), hi.fillna(0)], fmt="o", capsize=3)
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.axvline(-0.5, color="0.6", linestyle="--", linewidth=0.8)
    ax.set_xlabel("months from enrolment (0 = enrolment month, partly before)")
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
    ax.set_xlabel("percent")
    _footnote(fig, note)
    return fig


def report_figures(report: dict[str, Any]) -> dict[str, Figure]:
    """Every figure of a bargaining report, by file stem."""
    sales, series = report["sales"], report["series"]
    left_out = "; ".join(f"{v} {k}" for k, v in sales["excluded"].items()) or "none"
    base = f"Source: {report['source']}. Rows excluded: {left_out}."
    figures = {
        "price_share": price_share(series["share_band"], f"{base} {sales['with_reference']} sales with a reference."),
        "event_study": event_study(series["event_study"], f"{base} State: {report['enrolment']['state']}."),
        "group_premium": group_premium(series["premiums"], f"{base} Orders without a reference are not drawn."),
    }
    excluded = {m["commodity"]: m["rows_excluded"] for m in report["market"]}
    for commodity, table in series.get("dispersion", {}).items():
        other = "; ".join(f"{v} {k}" for k, v in excluded.get(commodity, {}).items()) or "none"
        note = (f"Source: {report['source']} (approved wholesale prices). Rows excluded: {other}. "
                "Periods with fewer than 3 markets are not drawn.")
        figures[f"dispersion_{commodity}"] = dispersion(table, commodity, note)
    return figures


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
