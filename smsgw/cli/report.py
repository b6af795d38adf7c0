"""``smsgw report bargaining``, ``dispersion`` and ``storage``: the analytics from the database."""
from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import pandas as pd

from smsgw.cli import core
from smsgw.csv_safe import SafeDictWriter
from smsgw.db import Database

FORMATS = click.Choice(["text", "json", "csv"])
PLOT_FORMATS = click.Choice(["svg", "png"])
EXCLUDED_SHOWN = 20  # rows left out listed in the text report (JSON lists all)
FREQS = click.Choice(["week", "month"])
DAY = click.DateTime(formats=["%Y-%m-%d"])


def _engine() -> Database:
    return Database(core.settings()["DATABASE_URL"])


@click.group()
def report() -> None:
    """Analytics: is the farmers' bargaining position improving?"""


def _commodity_ids(conn: object, text: str | None) -> list[int] | None:
    from smsgw.analytics.data import find_commodities

    if text is None:
        return None
    found = find_commodities(conn, text)  # type: ignore[arg-type]
    if found.empty:
        raise click.ClickException(f"unknown commodity: {text} (give a code, a name or an alias)")
    return [int(v) for v in found["id"]]


@report.command("bargaining")
@click.option("--commodity", help="Commodity code, name or alias (default: all).")
@click.option("--region", help="Only farmers whose market is in this region.")
@click.option("--since", type=DAY, help="Only sales from this day (YYYY-MM-DD).")
@click.option("--freq", type=FREQS, default="month", show_default=True, help="Period of the trends.")
@click.option("--transport", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV of transport costs per base unit: from_market,to_market,cost,currency.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), help="Write the figures here.")
@click.option("--plot-format", type=PLOT_FORMATS, default="svg", show_default=True, help="Format of the figures.")
def bargaining(commodity: str | None, region: str | None, since: dt.datetime | None, freq: str,
               transport: Path | None, fmt: str, plots: Path | None, plot_format: str) -> None:
    """Every bargaining indicator with its interval, trend and state."""
    from smsgw.analytics import plots as figures
    from smsgw.analytics import render
    from smsgw.analytics.config import AnalyticsConfig, read_transport
    from smsgw.analytics.report import bargaining as build
    from smsgw.analytics.report import load_inputs

    cfg = AnalyticsConfig(freq=freq)
    if transport is not None:
        cfg = replace(cfg, transport=read_transport(transport))
    db = _engine()
    try:
        # Read-only: on SQLite it never takes the write lock, so a report never stalls USSD.
        with db.session(read_only=True) as session:
            conn = session.connection()
            ids = _commodity_ids(conn, commodity)
            inputs = load_inputs(conn, cfg, commodity_ids=ids, since=since.date() if since else None)
    finally:
        db.dispose()  # close pooled connections even when the commodity was unknown
    if region is not None:
        markets = inputs.markets
        inside = set(markets.loc[markets["region"].str.lower() == region.strip().lower(), "market"])
        if not inside:
            raise click.ClickException(f"unknown region: {region}")
        # Only sales, orders and retail prices: references may still come from the nearest
        # market outside the region.
        inputs.sales = inputs.sales[inputs.sales["market"].isin(inside)]
        inputs.orders = inputs.orders[inputs.orders["market"].isin(inside)]
        inputs.retail = inputs.retail[inputs.retail["market"].isin(inside)]
    result = build(inputs, cfg, pd.Timestamp(dt.date.today()))
    if region is not None:
        result["source"] += f"; sales of farmers in region {region} (market side: all markets)"
    _emit(render.render_text(result) if fmt == "text" else render.render_json(result) if fmt == "json"
          else render.render_csv(result))
    if plots is not None:
        for path in figures.write(figures.report_figures(result), plots, plot_format):
            click.echo(f"wrote {path}", err=True)


@report.command("dispersion")
@click.option("--commodity", required=True, help="Commodity code, name or alias.")
@click.option("--kind", type=click.Choice(["wholesale", "retail", "farm_gate"]), default="wholesale", show_default=True)
@click.option("--freq", type=FREQS, default="month", show_default=True)
@click.option("--since", type=DAY, help="First day (YYYY-MM-DD).")
@click.option("--until", type=DAY, help="Last day (YYYY-MM-DD).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), help="Write the figure here.")
@click.option("--plot-format", type=PLOT_FORMATS, default="svg", show_default=True, help="Format of the figure.")
def dispersion(commodity: str, kind: str, freq: str, since: dt.datetime | None, until: dt.datetime | None,
               fmt: str, plots: Path | None, plot_format: str) -> None:
    """Spread of approved prices across markets per period, and its trend."""
    from smsgw.analytics import data
    from smsgw.analytics import plots as figures
    from smsgw.analytics.config import AnalyticsConfig
    from smsgw.analytics.dispersion import choose_series_rows, dispersion_report, dispersion_table

    cfg = AnalyticsConfig(freq=freq)
    db = _engine()
    try:
        with db.session(read_only=True) as session:
            conn = session.connection()
            ids = _commodity_ids(conn, commodity)
            prices = data.load_prices(conn, kind=kind, commodity_ids=ids, every_status=True,
                                      since=since.date() if since else None, until=until.date() if until else None)
            served = data.served_markets(conn)
    finally:
        db.dispose()
    result = dispersion_report(prices, commodity, cfg, served)
    if fmt == "json":
        keys = ("commodity", "freq", "periods", "trend", "rows_used", "rows_excluded", "excluded_rows", "comparison")
        _emit(json.dumps({k: result[k] for k in keys}, indent=2))
    elif fmt == "csv":
        _emit(dispersion_csv(result["periods"]))
    else:
        _emit(_dispersion_text(result, kind))
    if plots is not None:
        note = f"Source: smsgw database, {kind} price observations. " + _excluded(result)
        table = dispersion_table(choose_series_rows(prices)[0], cfg)
        fig = figures.dispersion(table, commodity, note, trend=result["trend_detail"], level=cfg.level)
        for path in figures.write({f"dispersion_{commodity}": fig}, plots, plot_format):
            click.echo(f"wrote {path}", err=True)


def dispersion_csv(periods: list[dict[str, Any]]) -> str:
    """The dispersion periods as CSV (cells neutralised against formula injection)."""
    out = io.StringIO()
    writer = SafeDictWriter(out, fieldnames=["period", "n_markets", "cv", "mean_abs_log_diff"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(periods)
    return out.getvalue()


def _excluded(result: dict[str, Any]) -> str:
    parts = [f"{v} {k}" for k, v in result["rows_excluded"].items()]
    return "Rows excluded: " + ("; ".join(parts) if parts else "none") + "."


def _dispersion_text(result: dict[str, Any], kind: str) -> str:
    s = result["series"]
    lines = [
        f"Price dispersion across markets: {result['commodity']} ({kind}, per {result['freq']})",
        f"Source: smsgw database, {kind} price observations; {result['rows_used']} approved rows used"
        + (f" (series: {s['commodity']}, grade {s['grade'] or 'any'}, {s['currency']} per {s['base']})." if s else "."),
        _excluded(result),
    ]
    if not result["rows_used"]:
        lines.append(f"There is no approved {kind} price of {result['commodity']} with a positive value: "
                     "nothing to compare" + (" (try another --kind)." if kind == "wholesale" else "."))
    listed = result["excluded_rows"][:EXCLUDED_SHOWN]
    for row in listed:
        lines.append(f"  left out: {row['day']} {row['market']} {row['commodity']} {row['grade'] or '-'} "
                     f"{row['price']} {row['currency']}/{row['base']}: {row['reason']}")
    if len(result["excluded_rows"]) > len(listed):
        lines.append(f"  ... and {len(result['excluded_rows']) - len(listed)} more (--format json lists every one)")
    lines += [
        "Periods with fewer than 3 markets have no value.",
        "",
        f"  {'period':<9} {'markets':>7} {'cv':>8} {'mean|dln|':>10}",
    ]
    for p in result["periods"]:
        cv = "-" if p["cv"] is None else f"{p['cv']:.4f}"
        mald = "-" if p["mean_abs_log_diff"] is None else f"{p['mean_abs_log_diff']:.4f}"
        lines.append(f"  {p['period']:<9} {p['n_markets']:>7} {cv:>8} {mald:>10}")
    tr, detail = result["trend"], result["trend_detail"]
    slope = (
        "-"
        if tr["slope_per_year"] is None
        else f"{tr['slope_per_year']:+.4f} per year [{tr['ci'][0]:+.4f}, {tr['ci'][1]:+.4f}]"
    )
    lines += ["", f"Trend of the CV: {slope}; {tr['state']}" + (f" ({detail['reason']})" if detail["reason"] else ""),
              f"  {detail['test']}" if detail["test"] else ""]
    comparison = result.get("comparison") or {}
    if comparison.get("available"):
        ci = comparison["ci"]
        lines += ["", (f"Served markets ({comparison['served_markets']}) against the others "
                       f"({comparison['other_markets']}), {comparison['periods']} periods: mean CV "
                       f"{comparison['mean_cv_served']:.4f} against {comparison['mean_cv_not_served']:.4f}, "
                       f"difference {comparison['difference']:+.4f}"
                       + (f" [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "") + "."),
                  f"  {comparison['method']}."]
    elif comparison.get("reason"):
        lines += ["", f"Served against other markets: not compared ({comparison['reason']})."]
    return "\n".join(lines).rstrip() + "\n"


def _emit(text: str) -> None:
    click.echo(text, nl=not text.endswith("\n"))


@report.command("storage")
@click.option("--commodity", required=True, help="Commodity code, name or alias.")
@click.option("--market", "market_text", help="Market code, name or alias (default: every market with prices).")
@click.option("--backtest", "replay", is_flag=True, help="Replay every past season with only the data known then.")
@click.option("--harvest", help="Harvest months, e.g. 7,8 (default: content/seasons.toml for the market's country).")
@click.option("--as-of", "as_of", type=DAY, help="The day the evidence is for (default: today).")
@click.option("--country", help="Only markets of this ISO country (KE, GH...).")
def storage_report(commodity: str, market_text: str | None, replay: bool, harvest: str | None,
                   as_of: dt.datetime | None, country: str | None) -> None:
    """Store or sell: has storing from harvest paid in each market's past seasons, and the backtest."""
    from smsgw.services import storage

    settings = core.settings()
    policy = storage.StoragePolicy.from_settings(settings)
    months = None
    if harvest:
        try:
            months = [int(item) for item in harvest.split(",") if item.strip()]
        except ValueError:
            raise click.ClickException(f"--harvest takes month numbers such as 7,8, got {harvest!r}") from None
        if not months or any(not 1 <= m <= 12 for m in months):
            raise click.ClickException(f"--harvest takes month numbers 1 to 12, got {harvest!r}")
    db = _engine()
    try:
        with db.session(read_only=True) as session:
            found = storage.find_commodity(session, commodity)
            if found is None:
                raise click.ClickException(f"unknown commodity: {commodity} (give a code, a name or an alias)")
            if market_text:
                market = storage.find_market(session, market_text)
                if market is None:
                    raise click.ClickException(f"unknown market: {market_text}")
                markets = [market]
            else:
                markets = storage.markets_for(session, found)
            if country:
                markets = [market for market in markets if market.country == country.strip().upper()]
            day = as_of.date() if as_of else dt.date.today()
            reports = storage.market_reports(session, found, markets, day, policy, months)
            text = (storage.render_backtest(found, reports, policy) if replay
                    else storage.render_evidence(found, reports, day, policy))
    finally:
        db.dispose()
    if not reports:
        raise click.ClickException(f"no market has approved wholesale prices of {found.code}")
    _emit(text)
