"""Benchmark 1: USSD sessions under load, against two limits measured in the same server.

The limits: a bare constant screen (``/bench/bare``: the server and load generator alone)
and a read-write endpoint (``/bench/rw``: one indexed read and one write of the session
row, committed: the least a hop must do). CPU per hop is the median of per-request
thread CPU times logged by ``bench_app`` (with the SQL statements each sent), and the
workers' whole CPU (from /proc: gunicorn, Flask and thread hand-offs included) per hop.
"""
from __future__ import annotations

import glob
import itertools
import os
import random
import tempfile
import time
from collections.abc import Iterator
from typing import Self

from tests.benchmarks import loadgen
from tests.benchmarks.common import Scale, Server, gunicorn, log, percentiles, ratio, server_errors
from tests.benchmarks.seed import World, phone

# (kind, weight): the menu paths farmers take most, each a whole session.
MIX = (("price", 35), ("price_subscribe", 15), ("standards", 10), ("sale", 20), ("order", 20))
SERVICE_CODE = "*384*1#"


def _inputs(kind: str, rng: random.Random) -> list[str]:
    """The inputs a farmer types, one per hop after the first."""
    if kind == "price":
        return ["1", str(rng.randint(1, 4)), str(rng.randint(1, 2))]
    if kind == "price_subscribe":
        return ["1", str(rng.randint(1, 4)), "1", "1"]
    if kind == "standards":
        return ["2", "1", "1"]
    if kind == "sale":
        # Maize, 90 kg bags, 10 bags, sold today at 4,300 KSh (a usual price), at the market, confirm.
        return ["4", "1", "1", "10", "1", "4300", "2", "1"]
    if kind == "order":
        # The group's open order, commit 5 bags, confirm.
        return ["3", "1", "1", "5", "1"]
    raise ValueError(kind)


class Sessions:
    """Endless scripted sessions, each with a new session id and a farmer not used before."""

    def __init__(self, world: World, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.counter = itertools.count()
        everyone = list(range(world.contacts))
        self.rng.shuffle(everyone)
        members = set(world.group_members)
        # Group members play the order sessions only; each pool is used up before any
        # farmer plays a second session.
        self.anyone = itertools.cycle([i for i in everyone if phone(i) not in members])
        self.kenyans = itertools.cycle([i for i in everyone if i % 2 == 0 and phone(i) not in members])
        shuffled = list(world.group_members)
        self.rng.shuffle(shuffled)
        self.members = itertools.cycle(shuffled)
        self.kinds = [kind for kind, _ in MIX]
        self.weights = [weight for _, weight in MIX]

    def mean_hops(self) -> float:
        """Average hops per session of the mix."""
        total = sum(self.weights)
        return sum(w * (len(_inputs(k, random.Random(0))) + 1) for k, w in MIX) / total

    def __iter__(self) -> Iterator[loadgen.Session]:
        return self

    def __next__(self) -> loadgen.Session:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "order":
            number = next(self.members)
        elif kind == "sale":
            number = phone(next(self.kenyans))
        else:
            number = phone(next(self.anyone))
        inputs = _inputs(kind, self.rng)
        session_id = f"ATUid_bench_{next(self.counter)}_{self.rng.getrandbits(32):08x}"
        last = "CON" if kind == "price" else "END"
        hops = []
        for n in range(len(inputs) + 1):
            fields = {"sessionId": session_id, "phoneNumber": number, "serviceCode": SERVICE_CODE,
                      "networkCode": "63902", "text": "*".join(inputs[:n])}
            hops.append(loadgen.Hop(fields, last if n == len(inputs) else "CON"))
        return loadgen.Session(kind, hops)


def _worker_pids(master: int) -> list[int]:
    """The gunicorn workers: the processes whose parent is the master."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    # The command may hold spaces: fields count from after its closing ")".
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(entry))
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (all their threads)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class Phase:
    """The load windows of one endpoint: their wall-clock times and the workers' CPU over them."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.windows: list[tuple[float, float]] = []
        self.cpu_seconds = 0.0

    def __enter__(self) -> Self:
        self.cpu0, self.t0 = _cpu_seconds(self.pids), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.windows.append((self.t0, time.monotonic()))
        self.cpu_seconds += _cpu_seconds(self.pids) - self.cpu0

    def cpu(self, log_prefix: str, path: str, hops: int) -> dict:
        """CPU ms per request of ``path``: percentiles of the hooks' per-request figures,
        and the workers' whole CPU (gunicorn's HTTP handling included) divided by requests."""
        samples, statements = [], []
        for name in glob.glob(f"{log_prefix}.*"):
            with open(name) as handle:
                for line in handle:
                    at, where, ms, sent = line.split()
                    if where == path and any(t0 <= float(at) <= t1 for t0, t1 in self.windows):
                        samples.append(float(ms))
                        statements.append(int(sent))
        found = percentiles(samples)
        return {
            "median": found["p50"], "p95": found["p95"], "requests_timed": len(samples),
            "mean": round(sum(samples) / len(samples), 2) if samples else None,
            "workers_total_per_request": round(self.cpu_seconds * 1000 / hops, 2) if hops else None,
            "sql_statements_per_request": round(sum(statements) / len(statements), 2) if statements else None,
        }


# Each saturation measure is split into this many windows, taken in turn with the
# others' (bare, read-write, USSD, bare, ...): on a shared machine the load drifts, and
# interleaving gives the three the same drift.
ROUNDS = 2
ENDPOINTS = (("bare", "/bench/bare", False), ("read_write", "/bench/rw", False), ("ussd", "/at/ussd", True))


def _saturate_in_turn(server: Server, sessions: Sessions, clients: int, seconds: float, cap: int,
                      log_prefix: str) -> tuple[dict[str, dict], dict[str, dict]]:
    """Each endpoint saturated for ``seconds`` in ROUNDS interleaved windows; results and CPU."""
    pids = _worker_pids(server.process.pid)
    tallies = {name: loadgen.Tally() for name, _, _ in ENDPOINTS}
    phases = {name: Phase(pids) for name, _, _ in ENDPOINTS}
    elapsed = dict.fromkeys(tallies, 0.0)
    for n in range(ROUNDS):
        for name, path, check in ENDPOINTS:
            log(f"ussd: {name}, {clients} clients, {seconds / ROUNDS:.0f} s (window {n + 1} of {ROUNDS})")
            with phases[name]:
                done = loadgen.saturate(server.host, server.port, path, sessions, clients, seconds / ROUNDS,
                                        cap // ROUNDS, check=check, tally=tallies[name])
            elapsed[name] += done["seconds"]
    results = {name: tally.summary(elapsed[name]) for name, tally in tallies.items()}
    cpu = {name: phases[name].cpu(log_prefix, path, results[name]["hops"]) for name, path, _ in ENDPOINTS}
    return results, cpu


def run(url: str, world: World, scale: Scale) -> dict:
    """Bare and read-write limits, USSD at saturation, USSD at half of saturation; ratios."""
    sessions = Sessions(world)
    seconds, clients = scale.ussd_seconds, scale.ussd_clients
    cap = int(2_000 * seconds)  # bounded request count, whatever the speed
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        log_prefix = f"{tmp}/cpu"
        with gunicorn(url, {"BENCH_CPU_LOG": log_prefix}) as server:
            host, port = server.host, server.port
            log("ussd: warm-up")
            loadgen.saturate(host, port, "/bench/bare", sessions, clients, 2, cap, check=False)
            loadgen.saturate(host, port, "/bench/rw", sessions, clients, 2, cap, check=False)
            loadgen.saturate(host, port, "/at/ussd", sessions, clients, 3, cap)
            found, cpu = _saturate_in_turn(server, sessions, clients, seconds, cap, log_prefix)
            bare, rw, full = found["bare"], found["read_write"], found["ussd"]
            half_rate = full["hops_per_s"] / 2
            log(f"ussd: {full['hops_per_s']} hops/s saturated; paced at {half_rate:.1f} hops/s")
            half = loadgen.paced(host, port, "/at/ussd", sessions, half_rate, sessions.mean_hops(), seconds)
            logged = server_errors(server)
    to_bare = ratio(full["hops_per_s"], bare["hops_per_s"])
    to_rw = ratio(full["hops_per_s"], rw["hops_per_s"])
    cpu_median = cpu["ussd"]["median"]
    p99 = half["latency_ms"]["p99"]
    errors = full["errors"] + half["errors"]
    log(f"ussd: {to_bare} of bare, {to_rw} of read-write; CPU {cpu_median} ms/hop (median); p99 {p99} ms at half")
    return {
        "clients": clients,
        "mean_hops_per_session": round(sessions.mean_hops(), 2),
        "bare": bare,
        "read_write": rw,
        "saturation": full,
        "half_load": half,
        "cpu_ms_per_request": cpu,
        "figures": {
            "hops_per_s": full["hops_per_s"],
            "bare_hops_per_s": bare["hops_per_s"],
            "read_write_hops_per_s": rw["hops_per_s"],
            "ratio_to_bare": to_bare,
            "ratio_to_read_write": to_rw,
            "cpu_ms_per_hop_median": cpu_median,
            "cpu_ms_per_hop_mean": cpu["ussd"]["mean"],
            "cpu_ms_per_hop_all_worker_threads": cpu["ussd"]["workers_total_per_request"],
            "sql_statements_per_hop": cpu["ussd"]["sql_statements_per_request"],
            "read_write_cpu_ms_median": cpu["read_write"]["median"],
            "ratio_cpu_to_read_write": ratio(cpu_median, cpu["read_write"]["median"]),
            "p99_ms_at_half_load": p99,
        },
        "ratio_to_bare": to_bare,
        "p99_ms_at_half_load": p99,
        "errors": errors,
        "server_log_errors": logged,
        "targets": {
            "ratio_to_bare_at_least_0.2": (to_bare or 0) >= 0.2,
            "ratio_to_read_write_at_least_0.5": (to_rw or 0) >= 0.5,
            "cpu_ms_per_hop_median_at_most_3": (cpu_median or 1e9) <= 3,
            "p99_at_half_load_under_100_ms": (p99 or 1e9) < 100,
            "zero_errors": errors == 0,
        },
    }
