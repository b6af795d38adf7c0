"""Store or sell (``smsgw.services.storage``): a market's seasonal pattern and its backtest.

Read only, for viewers: the evidence a farmer is given today, how it would have fared in
every past season (with only the prices known then), the calibration of its odds, and a
plot (SVG, drawn on the server) of the price after harvest, season by season.
"""
from __future__ import annotations

import io
import statistics

import sqlalchemy as sa
from flask import abort, current_app, render_template, request
from werkzeug.wrappers import Response

from smsgw.models import Commodity, Market
from smsgw.services import storage
from smsgw.web.admin import bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.i18n import local_today, tr
from smsgw.web.admin.views.common import db

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _chosen() -> tuple[Commodity, list[Market], Market | None]:
    """The commodity (default maize, else the first with prices) and market of the query."""
    session = db()
    produce = list(session.scalars(sa.select(Commodity).where(Commodity.kind == "produce").order_by(Commodity.code)))
    code = request.args.get("commodity") or ("maize" if any(c.code == "maize" for c in produce) else "")
    commodity = next((c for c in produce if c.code == code), produce[0] if produce and not code else None)
    if commodity is None:
        abort(404)
    markets = storage.markets_for(session, commodity)
    wanted = request.args.get("market")
    market = next((m for m in markets if m.code == wanted), None) if wanted else None
    if wanted and market is None:
        abort(404)
    if market is None and markets:
        home = [m for m in markets if storage.harvest_months(m.country, commodity)]
        market = (home or markets)[0]
    return commodity, markets, market


@bp.get("/analytics/storage")
@requires("viewer")
def storage_page() -> str:
    """One market's evidence today, its backtest, and the calibration of the stated odds."""
    commodity, markets, market = _chosen()
    session = db()
    policy = storage.StoragePolicy.from_settings(current_app.config)
    reports = storage.market_reports(session, commodity, [market], local_today(), policy) if market else []
    report = reports[0] if reports else None
    calendar = sorted(storage.harvest_calendar().items())
    return render_template(
        "admin/storage.html",
        commodity=commodity,
        commodities=list(session.scalars(sa.select(Commodity).where(Commodity.kind == "produce")
                                         .order_by(Commodity.code))),
        markets=markets,
        market=market,
        report=report,
        calibration=storage.calibration(report.backtest.decisions) if report else [],
        policy=storage.describe_policy(policy),
        calendar=[(country, code, ", ".join(MONTHS[m - 1] for m in months)) for (country, code), months in calendar],
        month=lambda m: MONTHS[m - 1],
        pct=lambda v: "—" if v is None else f"{v * 100:+.1f} %",
    )


@bp.get("/analytics/storage/plot.svg")
@requires("viewer")
def storage_plot() -> Response:
    """The price after harvest relative to the harvest month, each season, with its median and spread."""
    commodity, _markets, market = _chosen()
    if market is None:
        abort(404)
    policy = storage.StoragePolicy.from_settings(current_app.config)
    months = storage.harvest_months(market.country, commodity)
    series = storage.monthly_medians(db(), commodity, market)
    response = Response(_plot(series, months, policy, f"{commodity.name('en')}, {market.name}"),
                        mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, max-age=600"
    return response


def _plot(series: storage.Series, months: tuple[int, ...], policy: storage.StoragePolicy, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    harvest = months[0] if months else None
    steps = list(range(policy.max_months + 1))
    if harvest is None:
        ax.set_title(tr("No harvest months recorded for this crop in this country."), fontsize=10)
    else:
        ax.set_title(tr("%(what)s: price after the %(month)s harvest, each season", what=title,
                        month=MONTHS[harvest - 1]), fontsize=10)
        by_step: dict[int, list[float]] = {step: [] for step in steps}
        for year in sorted({y for y, m in series if m == harvest}):
            base = series[(year, harvest)]
            points = []
            for step in steps:
                index = year * 12 + harvest - 1 + step
                value = series.get((index // 12, index % 12 + 1))
                if value is not None:
                    points.append((step, value / base))
                    by_step[step].append(value / base)
            if len(points) > 1:
                ax.plot(*zip(*points), color="#999999", linewidth=0.8, alpha=0.7)
        shown = [s for s in steps if by_step[s]]
        if shown:
            ax.fill_between(shown, [_quantile(by_step[s], 0.25) for s in shown],
                            [_quantile(by_step[s], 0.75) for s in shown], color="#4c72b0", alpha=0.25,
                            label=tr("middle half of seasons"))
            ax.plot(shown, [statistics.median(by_step[s]) for s in shown], color="#4c72b0", linewidth=2,
                    label=tr("median season"))
        breakeven = [1 / max(0.01, 1 - policy.loss_pct_month / 100 * s) for s in steps]
        ax.plot(steps, breakeven, color="#c44e52", linestyle="--", label=tr("break-even after storage loss"))
        ax.set_xticks(steps, [MONTHS[(harvest - 1 + s) % 12] for s in steps])
        ax.set_ylabel(tr("price / harvest-month price"))
        ax.legend(fontsize=8, loc="upper left")
    fig.text(0.01, 0.005, tr("Source: approved wholesale prices, monthly medians per kg."), fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _quantile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=4, method="inclusive")[0 if q < 0.5 else 2]
