"""An independent computation of price dispersion, written out plainly, to check the module's."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def independent(frame: pd.DataFrame, period: str) -> pd.DataFrame:
    """Per period: markets, CV and mean |log difference| over pairs of the markets' medians."""
    frame = frame.assign(period=frame["day"].dt.to_period(period))
    medians = frame.groupby(["period", "market"])["price"].median()
    rows = {}
    for key, values in medians.groupby(level="period"):
        p = values.to_numpy()
        if len(p) < 3:
            rows[key] = (len(p), np.nan, np.nan)
            continue
        pairs = [abs(math.log(a) - math.log(b)) for a, b in itertools.combinations(p, 2)]
        rows[key] = (len(p), p.std(ddof=0) / p.mean(), sum(pairs) / len(pairs))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["n_markets", "cv", "mean_abs_log_diff"])


def compare(periods: list[dict], expected: pd.DataFrame, fmt: str) -> None:
    """The report's periods (those with a market) agree with ``expected`` to 1e-9."""
    got = pd.DataFrame(periods).set_index("period")
    expected = expected.set_axis(expected.index.to_timestamp().strftime(fmt))
    got = got.loc[got["n_markets"] > 0]
    assert list(got.index) == list(expected.index)
    assert (got["n_markets"].to_numpy() == expected["n_markets"].to_numpy()).all()
    for column in ("cv", "mean_abs_log_diff"):
        a, b = got[column].astype("float64").to_numpy(), expected[column].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert np.nanmax(np.abs(a - b)) < 1e-9
