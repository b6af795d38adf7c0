"""The report's figures (issue 19, item 10): labelled axes, interval level, markets per
period, trend line, a message instead of an empty chart; SVG and PNG."""
from __future__ import annotations

import numpy as np
import pandas as pd

from smsgw.analytics import plots
from smsgw.analytics.config import AnalyticsConfig
from smsgw.analytics.dispersion import dispersion_table, dispersion_trend


def _table() -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(3)
    days = pd.date_range("2022-01-01", "2024-12-31", freq="7D")
    prices = pd.DataFrame([(day, market, 20 + 2 * m + rng.normal(0, 1)) for day in days
                           for m, market in enumerate("abcde") if rng.random() < 0.8],
                          columns=["day", "market", "price"])
    cfg = AnalyticsConfig()
    table = dispersion_table(prices, cfg)
    return table, dispersion_trend(table, cfg).as_dict()


def _texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text")))


def test_dispersion_figure_has_axes_markets_and_trend() -> None:
    table, trend = _table()
    fig = plots.dispersion(table, "maize", "Source: test. Rows excluded: none.", trend, 0.95)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "month" and ax.get_ylabel() == "dispersion across markets"
    assert fig.axes[1].get_ylabel() == "markets with a price"
    labels = [line.get_label() for line in ax.get_lines()]
    assert any(label.startswith("trend ") and "(95% interval)" in label for label in labels), labels
    svg = plots.render(fig, "svg").decode()
    assert "markets with a price" in svg and "Rows excluded: none." in svg
    assert plots.render(fig, "png").startswith(b"\x89PNG")


def test_empty_figures_say_why() -> None:
    empty = dispersion_table(pd.DataFrame(columns=["day", "market", "price"]), AnalyticsConfig())
    assert "No approved price of maize" in _texts(plots.dispersion(empty, "maize", "note"))
    assert "No sale with a reference" in _texts(plots.price_share(pd.DataFrame(), "note"))
    assert "no event study" in _texts(plots.event_study(pd.DataFrame(), "note"))
    assert "No fulfilled group sell order" in _texts(plots.group_premium(pd.DataFrame(), "note"))


def test_event_study_shows_leads_lags_intervals_and_the_pre_trend_test() -> None:
    study = pd.DataFrame({"event": range(-3, 4), "effect": [0.0, 0.01, -0.01, 0.02, 0.05, 0.06, 0.05],
                          "lo": [-0.02] * 7, "hi": [0.08] * 7, "treated_sales": [100] * 7})
    pre = {"p_value": 0.004, "rejects": True,
           "estimates": [{"event": -k, "effect": 0.01 * k, "lo": 0.0, "hi": 0.02 * k} for k in range(1, 7)]}
    fig = plots.event_study(study, "note", pre, 0.9)
    ax = fig.axes[0]
    labels = [c.get_label() for c in ax.containers]
    assert "leads (before enrolment), 90% interval" in labels and "lags (month 0 partly before), 90% interval" in labels
    assert "leads of the pre-trend test, 90% interval" in labels
    assert "p = 0.004" in ax.get_title() and "no verdict" in ax.get_title()
    assert ax.get_ylabel() == "difference in ln price share" and "months from enrolment" in ax.get_xlabel()
