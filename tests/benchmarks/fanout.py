"""Benchmark 2: compose and queue the daily bulletin for every subscriber, against COPY.

The fan-out runs in a child process (``python -m tests.benchmarks.fanout URL DAY [PROFILE]``)
so its peak RSS is its own; the limit is the same number of outbox rows, with the same
columns, written by COPY and by executemany in this run. With PROFILE (a file, or a folder
given as ``BENCH_PROFILE=DIR`` to ``tests.benchmarks.run``) the child also writes the top
of a cProfile by cumulative time: ``DIR/fanout-<messages>.txt`` for each size.
"""
from __future__ import annotations

import cProfile
import datetime as dt
import json
import os
import pstats
import subprocess
import sys
import time

import psycopg
import sqlalchemy as sa

from smsgw.db import Database, utcnow
from smsgw.messaging.encoding import encode_for_sms
from smsgw.messaging.outbox import PRIORITY
from smsgw.models import Market
from smsgw.services.bulletins import Policy, run_bulletin
from tests.benchmarks.common import ROOT, log, peak_rss_mb, psycopg_dsn, ratio

# Quiet hours that never start: the bulletin is due now whatever the clock says.
ALWAYS = Policy(quiet_start=24, quiet_end=0)
COLUMNS = (
    "idempotency_key", "to_phone", "contact_id", "text", "purpose", "priority", "encoding", "segments",
    "sender_id", "status", "attempts", "next_attempt_at", "last_error", "created_at",
)
SAMPLE_TEXT = (
    "Prices 22 Nov: Maize Nakuru KSh 4,300/bag 90kg +2.4%; Beans Nakuru KSh 11,250/bag 90kg best Nairobi KSh 12,225; "
    "Potato Nakuru KSh 2,950/bag 50kg"
)


def fan_out(url: str, day: dt.date, profile: str | None = None) -> dict:
    """Run every market's daily bulletin here and now (the child process's work)."""
    db = Database(url)
    with db.session() as session:
        codes = list(session.scalars(sa.select(Market.code).order_by(Market.id)))
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    started = time.perf_counter()
    messages = segments = texts = 0
    for code in codes:
        report = run_bulletin(db, "daily", code, day, ALWAYS)
        messages += report.messages
        segments += report.segments
        texts += report.distinct_texts
    seconds = time.perf_counter() - started
    if profiler is not None and profile:
        profiler.disable()
        if os.path.isdir(profile):
            profile = os.path.join(profile, f"fanout-{messages}.txt")
        with open(profile, "w") as handle:
            pstats.Stats(profiler, stream=handle).sort_stats("cumulative").print_stats(40)
    db.dispose()
    return {
        "markets": len(codes), "messages": messages, "segments": segments, "distinct_texts": texts,
        "seconds": round(seconds, 2), "rows_per_s": round(messages / seconds, 1) if seconds else None,
        "peak_rss_mb": peak_rss_mb(),
    }


def measure(url: str, day: dt.date, profile: str | None = None) -> dict:
    """The fan-out in a child process; its JSON answer (with its own peak RSS)."""
    cmd = [sys.executable, "-m", "tests.benchmarks.fanout", url, day.isoformat()] + ([profile] if profile else [])
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"fan-out failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def clear_outbox(url: str) -> None:
    """An empty outbox and no claimed bulletin runs, vacuumed, as before a first run."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("DELETE FROM delivery_report")
        conn.exec_driver_sql("DELETE FROM outbound_message")
        conn.exec_driver_sql("DELETE FROM bulletin_run")
        conn.exec_driver_sql("VACUUM ANALYZE outbound_message")
    engine.dispose()


def _rows(url: str, count: int) -> list[tuple]:
    """``count`` outbox rows as a bulletin run writes them, built before any timing."""
    db = Database(url)
    with db.session() as session:
        people = session.execute(sa.text("SELECT id, phone FROM contact ORDER BY id LIMIT :n"), {"n": count}).all()
    db.dispose()
    encoded = encode_for_sms(SAMPLE_TEXT, "en")
    now = utcnow()
    rows = [
        (f"bench:copy:{cid}", number, cid, encoded.text, "bulletin", PRIORITY["bulletin"], encoded.encoding,
         encoded.segments, "SOKO", "queued", 0, now, "", now)
        for cid, number in people
    ]
    # Same row count as the fan-out: repeat people with new keys if there are fewer.
    n = 0
    while len(rows) < count:
        base = rows[n % len(people)]
        rows.append((f"bench:copy:x{n}", *base[1:]))
        n += 1
    return rows


def bulk_limit(url: str, count: int) -> dict:
    """Rows/s of COPY and of executemany into the real outbox table (rows removed after)."""
    rows = _rows(url, count)
    found = {}
    with psycopg.connect(psycopg_dsn(url)) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY outbound_message ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        found["copy"] = _rate(count, time.perf_counter() - started)
    clear_outbox(url)
    with psycopg.connect(psycopg_dsn(url)) as conn:
        placeholders = ", ".join(["%s"] * len(COLUMNS))
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO outbound_message ({', '.join(COLUMNS)}) VALUES ({placeholders})", rows)
        conn.commit()
        found["executemany"] = _rate(count, time.perf_counter() - started)
    clear_outbox(url)
    return found


def _rate(count: int, seconds: float) -> dict:
    return {"rows": count, "seconds": round(seconds, 2), "rows_per_s": round(count / seconds, 1)}


def summarize(small: dict | None, large: dict, limit: dict, small_n: int, large_n: int) -> dict:
    """The fan-out figures and ratios for the JSON summary.

    Besides the whole run, the marginal rate: the rows the large run queued beyond the
    small one over the extra seconds it took, so the cost paid once per run (composing
    each distinct text, claiming and finishing each market) is told apart from the cost
    per subscriber.
    """
    rss_small = small["peak_rss_mb"] if small else None
    marginal = None
    if small and large["seconds"] > small["seconds"]:
        marginal = round((large["messages"] - small["messages"]) / (large["seconds"] - small["seconds"]), 1)
    return {
        "subscribers": large_n,
        "fan_out": large,
        "fan_out_small": {"subscribers": small_n, **small} if small else None,
        "bulk_insert": limit,
        "ratio_to_copy": ratio(large["rows_per_s"], limit["copy"]["rows_per_s"]),
        "ratio_to_executemany": ratio(large["rows_per_s"], limit["executemany"]["rows_per_s"]),
        "marginal_rows_per_s": marginal,
        "marginal_ratio_to_copy": ratio(marginal, limit["copy"]["rows_per_s"]),
        "marginal_ratio_to_executemany": ratio(marginal, limit["executemany"]["rows_per_s"]),
        "peak_rss_mb": large["peak_rss_mb"],
        "peak_rss_mb_small": rss_small,
        "rss_growth_mb": round(large["peak_rss_mb"] - rss_small, 1) if rss_small else None,
        "targets": {
            "ratio_to_copy_at_least_0.25": (ratio(large["rows_per_s"], limit["copy"]["rows_per_s"]) or 0) >= 0.25,
            "ratio_to_executemany_at_least_0.5": (ratio(large["rows_per_s"], limit["executemany"]["rows_per_s"]) or 0)
            >= 0.5,
            "rss_under_300_mb": large["peak_rss_mb"] < 300,
            "rss_flat_within_20_mb": rss_small is not None and large["peak_rss_mb"] - rss_small < 20,
        },
    }


def main() -> None:
    """Child process entry: fan out, print one JSON line."""
    url, day = sys.argv[1], dt.date.fromisoformat(sys.argv[2])
    profile = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("BENCH_PROFILE")
    log(f"fan-out child: {url.rsplit('/', 1)[-1]} {day}")
    print(json.dumps(fan_out(url, day, profile)))


if __name__ == "__main__":
    main()
