"""Analytics: is the farmer's bargaining position improving? (``smsgw.analytics``).

The page shows the report's figures as tables; each plot is a PNG of its own URL, so
the page stays small on a slow link and the plots load after the text. The report is
computed once per change of the data it reads and kept in the database (``report_cache``,
see ``smsgw.analytics.cache``), never in a worker's memory: a page view and its plots read
it, they do not compute it again each.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import abort, render_template, request
from werkzeug.wrappers import Response

from smsgw.analytics import cache
from smsgw.models import Commodity
from smsgw.web.admin import bp
from smsgw.web.admin.auth import requires
from smsgw.web.admin.i18n import local_today
from smsgw.web.admin.views.common import db
from smsgw.web.database import get_db

FREQS = ("month", "week")
REPORT_FIGURES = ("price_share", "event_study", "group_premium")
# A plot is drawn from the report its page was computed with, if that is this recent (the
# browser keeps a plot as long), so the page's numbers and its plots agree and a busy
# service (every USSD hop is a change) does not compute the report again for each plot.
FIGURE_MAX_AGE = dt.timedelta(seconds=600)


def _choices(session: so.Session) -> tuple[str, str, list[tuple[str, str]]]:
    """The chosen period and commodity (codes), and the commodities to choose from.

    Ends the request's read transaction and gives its connection back to the pool: the
    report reads in a session of its own and writes the cache row in another.
    """
    commodities = [
        (c.code, c.name("en"))
        for c in session.scalars(sa.select(Commodity).where(Commodity.kind == "produce").order_by(Commodity.code))
    ]
    freq = request.args.get("freq", "month")
    code = request.args.get("commodity", "")
    if freq not in FREQS or (code and code not in dict(commodities)):
        abort(404)
    session.commit()
    return freq, code, commodities


@bp.get("/analytics")
@requires("viewer")
def analytics() -> str:
    """Headline indicators with intervals and states, the enrolment effect, market spread."""
    freq, code, commodities = _choices(db())
    report = cache.cached_report(get_db(), freq, code, local_today())
    headline = [row for row in report["rows"] if row["dimension"] == "all"]
    # The three report plots, plus the spread of one commodity (the chosen one, else the first).
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
    freq, code, commodities = _choices(session)
    spread = name.removeprefix("dispersion_") if name.startswith("dispersion_") else None
    if name not in REPORT_FIGURES and spread is None:
        abort(404)
    if spread is not None and spread not in dict(commodities):
        # Not a crop the page offers (or no commodity at all: 404): no report needed.
        figure = _dispersion_figure(session, freq, spread)
    else:
        database = get_db()
        report = (cache.recent_report(database, freq, code, FIGURE_MAX_AGE)
                  or cache.cached_report(database, freq, code, local_today()))
        table = report["series"]["dispersion"].get(spread) if spread else None
        if spread is None:  # the report's plots, without drawing every commodity's spread
            figure = plots.report_figures({**report, "series": {**report["series"], "dispersion": {}}})[name]
        elif table is None:  # none of its prices approved, or outside the chosen commodity
            figure = _dispersion_figure(session, freq, spread)
        else:
            figure = plots.dispersion_of(report, spread)
    response = Response(plots.render(figure, "png"), mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=600"
    return response


def _dispersion_figure(session: so.Session, freq: str, commodity: str) -> Any:
    """The spread of one commodity's prices across markets, read from the database, drawn as
    the report draws it (trend, rows left out)."""
    from smsgw.analytics import data, plots
    from smsgw.analytics.config import AnalyticsConfig
    from smsgw.analytics.dispersion import HELD, REJECTED, choose_series, dispersion_table, dispersion_trend
    from smsgw.analytics.report import SOURCE

    found = session.scalar(sa.select(Commodity.id).where(Commodity.code == commodity))
    if found is None:
        abort(404)
    cfg = AnalyticsConfig(freq=freq)
    conn = session.connection()
    series, excluded = choose_series(data.load_prices(conn, commodity_ids=[found]))
    held = data.load_held(conn, commodity_ids=[found])
    for status, label in (("pending", HELD), ("rejected", REJECTED)):
        rows = int(held.loc[held["status"] == status, "rows"].sum())
        if rows:
            excluded[label] = excluded.get(label, 0) + rows
    table = dispersion_table(series, cfg)
    report = {"source": SOURCE, "settings": {"level": cfg.level}, "series": {"dispersion": {commodity: table}},
              "market": [{"commodity": commodity, "rows_excluded": excluded,
                          "trend": dispersion_trend(table, cfg).as_dict()}]}
    return plots.dispersion_of(report, commodity)
