"""Analytics: is the farmer's bargaining position improving? (``smsgw.analytics``).

The page shows the report's figures as tables; each plot is a PNG of its own URL, so
the page stays small on a slow link and the plots load after the text. Every request
computes from the database: nothing is cached in a worker's memory.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort, render_template, request
from werkzeug.wrappers import Response

from smsgw.models import Commodity
from smsgw.web.admin import bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.i18n import local_today
from smsgw.web.admin.views.common import db

FREQS = ("month", "week")
REPORT_FIGURES = ("price_share", "event_study", "group_premium")


def _choices(session: so.Session) -> tuple[str, str, list[tuple[str, str]]]:
    """The chosen period and commodity (codes), and the commodities to choose from."""
    commodities = [(c.code, c.name("en")) for c in session.scalars(sa.select(Commodity).where(Commodity.kind == "produce").order_by(Commodity.code))]
    freq = request.args.get("freq", "month")
    code = request.args.get("commodity", "")
    if freq not in FREQS or (code and code not in dict(commodities)):
        abort(404)
    return freq, code, commodities


def build_report(session: so.Session, freq: str, code: str) -> dict[str, Any]:
    """The bargaining report from the database, as ``smsgw report bargaining`` computes it."""
    from smsgw.analytics import data
    from smsgw.analytics.config import AnalyticsConfig
    from smsgw.analytics.report import bargaining, load_inputs

    conn = session.connection()
    ids = [int(v) for v in data.find_commodities(conn, code)["id"]] if code else None
    cfg = AnalyticsConfig(freq=freq)
    return bargaining(load_inputs(conn, cfg, commodity_ids=ids), cfg, pd.Timestamp(local_today()))


@bp.get("/analytics")
@requires("viewer")
def analytics() -> str:
    """Headline indicators with intervals and states, the enrolment effect, market spread."""
    session = db()
    freq, code, commodities = _choices(session)
    report = build_report(session, freq, code)
    headline = [row for row in report["rows"] if row["dimension"] == "all"]
    # Each report plot recomputes the report: three of them, plus the spread of one
    # commodity (the chosen one, else the first), keep a page view cheap enough.
    spread = code or (report["market"][0]["commodity"] if report["market"] else None)
    figures = [*REPORT_FIGURES, *([f"dispersion_{spread}"] if spread else [])]
    return render_template(
        "admin/analytics.html", report=report, headline=headline, figures=figures, freq=freq, code=code,
        commodities=commodities, freqs=FREQS,
    )


@bp.get("/analytics/figures/<name>.png")
@requires("viewer")
def analytics_figure(name: str) -> Response:
    """One plot of the report as a PNG (drawn on a bare Figure: safe across threads)."""
    from smsgw.analytics import plots

    session = db()
    freq, code, _ = _choices(session)
    if name.startswith("dispersion_"):
        figure = _dispersion_figure(session, freq, name.removeprefix("dispersion_"))
    elif name in REPORT_FIGURES:
        figure = plots.report_figures(build_report(session, freq, code))[name]
    else:
        abort(404)
    response = Response(plots.render(figure, "png"), mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=600"
    return response


def _dispersion_figure(session: so.Session, freq: str, commodity: str) -> Any:
    """The spread of one commodity's prices across markets (no need for the whole report)."""
    from smsgw.analytics import data, plots
    from smsgw.analytics.config import AnalyticsConfig
    from smsgw.analytics.dispersion import choose_series, dispersion_table
    from smsgw.analytics.report import SOURCE

    found = session.scalar(sa.select(Commodity.id).where(Commodity.code == commodity))
    if found is None:
        abort(404)
    prices = data.load_prices(session.connection(), commodity_ids=[found])
    series, _ = choose_series(prices)
    return plots.dispersion(dispersion_table(series, AnalyticsConfig(freq=freq)), commodity, f"Source: {SOURCE}.")
