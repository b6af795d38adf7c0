"""Run the benchmarks and print one JSON summary on stdout (progress goes to stderr).

    python -m tests.benchmarks.run [--only NAME[,NAME]] [--scale small|full|million]

Names: ussd, fanout, drain, inbound, analytics, import. USSD, fan-out, drain and inbound
share one throwaway PostgreSQL database (``smsgw_bench_<random>``, dropped at the end).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time

from tests.benchmarks import common
from tests.benchmarks.common import SCALES, log

NAMES = ("ussd", "fanout", "drain", "inbound", "analytics", "import")
DATABASE_BENCHMARKS = {"ussd", "fanout", "drain", "inbound"}


def _machine() -> dict:
    with open("/proc/meminfo") as handle:
        total_kb = int(handle.readline().split()[1])
    return {"cpus": os.cpu_count(), "memory_gib": round(total_kb / 1024 ** 2, 1), "python": platform.python_version(),
            "kind": "python-svc"}


class Summary(dict):
    """The JSON summary; with a path, also saved after every benchmark (a long run may die)."""

    def __init__(self, path: str | None, **items: object) -> None:
        super().__init__(items)
        self.path = path

    def __setitem__(self, key: str, value: object) -> None:
        super().__setitem__(key, value)
        if self.path:
            with open(self.path, "w") as handle:
                json.dump(self, handle, indent=2, default=str)


def _database_benchmarks(only: set[str], scale: common.Scale, summary: dict) -> None:
    from tests.benchmarks import drain, fanout, inbound, seed, ussd

    today = dt.date.today()
    name, url = common.create_database()
    log(f"database {name}")
    try:
        world = seed.create(url, today)
        start = 0
        if "fanout" in only:
            seed.add_farmers(url, world, 0, scale.small_contacts)
            seed.analyze(url)
            log(f"fanout: {scale.small_contacts:,} subscribers (memory baseline)")
            small = fanout.measure(url, today)
            fanout.clear_outbox(url)
            start = scale.small_contacts
        seed.add_farmers(url, world, start, scale.contacts)
        seed.add_group_orders(url, world)
        seed.analyze(url)
        if "ussd" in only:
            summary["ussd"] = ussd.run(url, world, scale)
        if only & {"fanout", "drain", "inbound"}:
            fanout.clear_outbox(url)
            if "fanout" in only:
                log(f"fanout: bulk-insert limit, {scale.contacts:,} rows")
                limit = fanout.bulk_limit(url, scale.contacts)
                log(f"fanout: {scale.contacts:,} subscribers")
                large = fanout.measure(url, today)
                summary["fanout"] = fanout.summarize(small, large, limit, scale.small_contacts, scale.contacts)
                log(f"fanout: {large['rows_per_s']} rows/s, limit {limit['copy']['rows_per_s']} (COPY)")
            else:
                fanout.measure(url, today)
            seed.analyze(url)
            if "drain" in only:
                summary["drain"] = drain.run(url, scale.drain_rounds)
                if "fanout" in only:
                    summary["bulletin_enqueue_and_drain"] = _morning(summary["fanout"], summary["drain"])
            if "inbound" in only:
                if "drain" not in only:
                    drain.run(url)  # start from an empty queue
                summary["inbound"] = inbound.run(url, world, scale, today)
    finally:
        common.drop_database(name)
        log(f"dropped {name}")


def _morning(fanout: dict, drained: dict) -> dict:
    """The whole morning bulletin: enqueue, then the drain with one and with two processes."""
    enqueue = fanout["fan_out"]["seconds"]
    one = min(run["seconds"] for run in drained["one_drain"])
    two = min(run["seconds"] for run in drained["two_drains"])
    return {
        "subscribers": fanout["subscribers"], "messages": fanout["fan_out"]["messages"],
        "enqueue_seconds": enqueue, "drain_seconds_one": one, "drain_seconds_two": two,
        "total_minutes_one_drain": round((enqueue + one) / 60, 2),
        "total_minutes_two_drains": round((enqueue + two) / 60, 2),
        # Below a million, a straight-line projection (the fixed cost per run makes it high).
        "projected_minutes_at_one_million_two_drains": round(
            (enqueue + two) / 60 * 1_000_000 / max(fanout["subscribers"], 1), 1),
        "target_15_minutes_at_one_million": (enqueue + two) / 60 <= 15 if fanout["subscribers"] >= 1_000_000
        else "not measured at this scale (--scale million)",
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, run, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--only", action="append", default=[], help=f"one of {', '.join(NAMES)} (repeat or comma-separate)"
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--data", default=str(common.ROOT.parent / "shared" / "data"),
                        help="folder of the real price files (default: ../shared/data)")
    parser.add_argument("--partial", help="also write the summary so far to this file after each benchmark")
    args = parser.parse_args(argv)
    only = {name.strip() for value in args.only for name in value.split(",") if name.strip()} or set(NAMES)
    unknown = only - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark: {', '.join(sorted(unknown))}")
    scale = SCALES[args.scale]
    summary = Summary(args.partial, date=dt.date.today().isoformat(), machine=_machine(), scale=scale.__dict__)
    started = time.perf_counter()
    if only & DATABASE_BENCHMARKS:
        _database_benchmarks(only, scale, summary)
    if "analytics" in only:
        from tests.benchmarks import analytics

        summary["analytics"] = analytics.run(scale, args.data)
    if "import" in only:
        from tests.benchmarks import importer

        summary["import"] = importer.run(scale, args.data)
    summary["total_seconds"] = round(time.perf_counter() - started, 1)
    json.dump(summary, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
