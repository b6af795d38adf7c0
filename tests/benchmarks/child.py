"""Run one measured task in a child process and write its time and peak RSS as JSON.

    python -m tests.benchmarks.child OUT.json cli ARGS...       # an ``smsgw`` command
    python -m tests.benchmarks.child OUT.json dispersion FILES  # dispersion of real files

A child of its own gives each task its own peak RSS (``ru_maxrss`` of this process).
With BENCH_PROFILE=path, a pyinstrument profile of the task is written there.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

from tests.benchmarks.common import peak_rss_mb


def _cli(args: list[str]) -> dict:
    from smsgw.cli import main

    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out):
        try:
            main.main(args, standalone_mode=False)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    text = out.getvalue()
    return {"exit_code": code, "output_chars": len(text), "output_tail": text[-600:]}


def _dispersion(paths: list[str]) -> dict:
    """Every commodity of every file through ``dispersion_report``, as the CLI would."""
    from smsgw.analytics import sources
    from smsgw.analytics.config import AnalyticsConfig
    from smsgw.analytics.dispersion import dispersion_report

    readers = {"kenya": sources.read_wfp, "ghana": sources.read_mofa, "india": sources.read_agmarknet}
    cfg = AnalyticsConfig(freq="month")
    found = {}
    for path in paths:
        name = Path(path).name
        reader = next(read for prefix, read in readers.items() if name.startswith(prefix))
        started = time.perf_counter()
        prices = reader(Path(path))
        reports = 0
        for kind, by_kind in prices.groupby("kind"):
            for commodity, rows in by_kind.groupby("commodity"):
                dispersion_report(rows, f"{commodity} ({kind})", cfg)
                reports += 1
        found[name] = {"rows": len(prices), "reports": reports, "seconds": round(time.perf_counter() - started, 2)}
    return {"files": found}


def main() -> None:
    """Run the task named on the command line; write the JSON result file."""
    out, task, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    profiler = None
    if os.environ.get("BENCH_PROFILE"):
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    started = time.perf_counter()
    result = _cli(args) if task == "cli" else _dispersion(args)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        Path(os.environ["BENCH_PROFILE"]).write_text(profiler.output_text(unicode=False, color=False))
    Path(out).write_text(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": peak_rss_mb(), **result}))


if __name__ == "__main__":
    main()
