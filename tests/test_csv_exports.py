"""CSV formula injection: no cell of any CSV the service writes starts a spreadsheet formula."""
from __future__ import annotations

import csv
import io
import math

import pandas as pd
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgw.analytics.render import CSV_FIELDS, render_csv
from smsgw.cli import main
from smsgw.cli.report import dispersion_csv
from smsgw.csv_safe import DANGEROUS, SafeDictWriter, SafeWriter, safe_cell, safe_frame

HOSTILE = '=HYPERLINK("http://x","y")'
text = st.text()
# Text that a spreadsheet would run, plus anything at all.
risky_text = st.one_of(text, st.builds(lambda c, t: c + t, st.sampled_from(DANGEROUS), text))
number = st.one_of(st.none(), st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False))


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _assert_safe(output: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(output, newline="")))
    for row in rows:
        for cell in row:
            assert not cell.startswith(DANGEROUS) or _is_number(cell), (cell, output)
    return rows


@st.composite
def reports(draw: st.DrawFn) -> dict:
    def row() -> dict:
        return {
            "indicator": draw(risky_text), "dimension": draw(risky_text), "cell": draw(risky_text),
            "value": draw(number), "ci": draw(st.one_of(st.none(), st.tuples(number, number))),
            "n": draw(number), "clusters": draw(number), "state": draw(risky_text), "reason": draw(risky_text),
            "method": draw(risky_text),
            "trend": {"slope_per_year": draw(number), "ci": draw(st.one_of(st.none(), st.tuples(number, number))),
                      "q_value": draw(number), "n_points": draw(number)},
        }

    rows = [row() for _ in range(draw(st.integers(0, 3)))]
    enrolment = {"effect_pct": draw(number), "ci_pct": draw(st.one_of(st.none(), st.tuples(number, number))),
                 "post_sales": draw(number), "clusters": draw(number), "state": draw(risky_text),
                 "reason": draw(risky_text), "method": draw(risky_text)}
    return {"rows": rows, "enrolment": enrolment}


@settings(max_examples=150, deadline=None)
@given(reports())
def test_bargaining_csv_neutralises_any_text(report: dict) -> None:
    rows = _assert_safe(render_csv(report))
    assert rows[0] == CSV_FIELDS and len(rows) == len(report["rows"]) + 2


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({"period": risky_text, "n_markets": number, "cv": number,
                                       "mean_abs_log_diff": number}), max_size=4))
def test_dispersion_csv_neutralises_any_text(periods: list[dict]) -> None:
    rows = _assert_safe(dispersion_csv(periods))
    assert len(rows) == len(periods) + 1


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.one_of(risky_text, number), max_size=5), max_size=4),
    st.lists(risky_text, min_size=1, max_size=4),
)
def test_the_writers_and_frames_neutralise_any_text(rows: list[list], header: list[str]) -> None:
    out = io.StringIO()
    SafeWriter(out, lineterminator="\n").writerows(rows)
    assert len(_assert_safe(out.getvalue())) == len(rows)  # no row injected by a carriage return
    out = io.StringIO()
    fields = [f"f{i}" for i in range(len(header))]
    writer = SafeDictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerow(dict(zip(fields, header, strict=True)))
    _assert_safe(out.getvalue())
    frame = pd.DataFrame({"name": header, "trend": [-0.05] * len(header)})
    _assert_safe(safe_frame(frame).to_csv(index=False))


def test_numbers_stay_numbers() -> None:
    assert safe_cell(-0.05) == -0.05 and safe_cell(-3) == -3 and safe_cell(None) is None
    assert safe_cell("-3") == "'-3" and safe_cell("\tx") == "'\tx" and safe_cell("\rx") == "'\nx"
    assert safe_cell("x\r=cmd") == "x\n=cmd" and safe_cell("a\r\nb") == "a\nb"
    assert safe_cell("Nakuru") == "Nakuru" and safe_cell("") == ""
    frame = safe_frame(pd.DataFrame({"region": [HOSTILE, "@SUM(A1)"], "trend": [-0.05, 0.1], "n": [-1, 2]}))
    parsed = pd.read_csv(io.StringIO(frame.to_csv(index=False)))
    assert list(parsed["region"]) == ["'" + HOSTILE, "'@SUM(A1)"]
    assert list(parsed["trend"]) == [-0.05, 0.1] and list(parsed["n"]) == [-1, 2]


def test_report_bargaining_csv_with_a_hostile_region_and_market(database_url: str) -> None:
    """A region and a market code taken from an imported price file reach the CSV as text, not a formula."""
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            market_id, code, region = conn.execute(sa.text(
                "SELECT id, code, region FROM market WHERE lower(region) = 'nakuru' ORDER BY id")).first()
            conn.execute(sa.text("UPDATE market SET region = :r, code = :c WHERE id = :i"),
                         {"r": HOSTILE, "c": "@" + code, "i": market_id})
        result = CliRunner().invoke(main, ["report", "bargaining", "--format", "csv"],
                                    env={"DATABASE_URL": database_url}, catch_exceptions=False)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE market SET region = :r, code = :c WHERE id = :i"),
                         {"r": region, "c": code, "i": market_id})
        engine.dispose()
    assert result.exit_code == 0, result.output
    rows = _assert_safe(result.output)
    cells = {(r[1], r[2]) for r in rows[1:]}
    assert ("region", "'" + HOSTILE) in cells
    assert ("market", "'@" + code) in cells
    # Negative numbers are still written as numbers.
    assert any(c.startswith("-") and _is_number(c) for r in rows[1:] for c in r)
