"""Benchmark 3: the queued bulletins through the real Africa's Talking SDK to the fake API.

Three measures on the same queue, refilled to the same rows (same ids, texts and due
times, vacuumed) before each run:

- one drain process (``drain_all``) sending everything: messages/s;
- the limit: the fake's own rate for the very requests that drain made (same texts, same
  recipient lists), replayed one after another by a plain ``requests`` client;
- two drain processes side by side on the same queue, against one.

Drains and the plain client run in child processes (``python -m tests.benchmarks.drain``)
and the fake in this one, so the fake never shares a GIL with what it measures. CPU
seconds of the drains, of the fake, of PostgreSQL and of the whole machine (``/proc``)
during each run say where the time went; ``BENCH_PROFILE=DIR`` also writes a cProfile of
each drain process there.
"""
from __future__ import annotations

import cProfile
import json
import math
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests
import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Database
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways.africastalking import ENQUEUE_FROM, AfricasTalkingGateway
from tests.benchmarks.common import ROOT, log, ratio
from tests.fake_at import PATH, FakeAfricasTalking

BATCH = 500
API_KEY = "bench-key"
# Each kind of run ``rounds`` times (the scale's ``drain_rounds``), alternating; the figures
# are each kind's least disturbed run (the fastest): on a machine shared with other work, the
# slower runs measure the neighbours (see each run's ``rest_of_machine`` CPU seconds).
SNAPSHOT = "bench_drain_queue"
CLOCK = os.sysconf("SC_CLK_TCK")


def expected_requests(url: str, purpose: str = "bulletin") -> tuple[int, int, int]:
    """(distinct texts, queued messages, requests allowed) for the queued ``purpose`` rows."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        groups = conn.execute(sa.text(
            "SELECT count(*) FROM outbound_message WHERE status = 'queued' AND purpose = :p GROUP BY text, sender_id"
        ), {"p": purpose}).scalars().all()
    engine.dispose()
    return len(groups), sum(groups), sum(math.ceil(n / BATCH) for n in groups)


def drain_all(db: Database, gateway: AfricasTalkingGateway) -> dict:
    """Drain until nothing is due; totals of every pass."""
    totals: Counter[str] = Counter()
    passes = 0
    started = time.perf_counter()
    while True:
        stats = drain_once(db, gateway, batch_size=BATCH, chunk=BATCH)
        if not stats.claimed:
            break
        passes += 1
        totals.update({"claimed": stats.claimed, "sent": stats.sent, "retried": stats.retried,
                       "failed": stats.failed, "requests": stats.requests})
    return {"seconds": time.perf_counter() - started, "passes": passes, **totals}


# -- the queue, refilled between runs --------------------------------------------------


def _snapshot(url: str) -> None:
    """Remember the queued bulletins' due times, so every run starts from the same queue."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SNAPSHOT}")
        conn.exec_driver_sql(
            f"CREATE TABLE {SNAPSHOT} AS SELECT id, next_attempt_at FROM outbound_message "
            "WHERE status = 'queued' AND purpose = 'bulletin'"
        )
    engine.dispose()


def _refill(url: str) -> None:
    """Put the snapshot's rows back in the queue as they were, and vacuum the table."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(
            f"UPDATE outbound_message o SET status = 'queued', attempts = 0, next_attempt_at = q.next_attempt_at, "
            "claimed_at = NULL, claimed_by = NULL, lease_until = NULL, sent_at = NULL, final_at = NULL, "
            f"gateway_message_id = NULL, cost = NULL, cost_currency = NULL, last_error = '' FROM {SNAPSHOT} q "
            "WHERE o.id = q.id"
        )
        conn.exec_driver_sql("DELETE FROM runtime_state WHERE name = 'gateway_pause'")
        conn.exec_driver_sql("VACUUM ANALYZE outbound_message")
    engine.dispose()


def _drop_snapshot(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SNAPSHOT}")
    engine.dispose()


def _states(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        states = dict(conn.execute(sa.text(
            "SELECT status, count(*) FROM outbound_message WHERE purpose = 'bulletin' GROUP BY status")).all())
    engine.dispose()
    return {str(status): int(count) for status, count in states.items()}


# -- where the CPU went ---------------------------------------------------------------


def _machine_busy() -> float:
    """Seconds of CPU the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK


def _process_cpu(pids: list[int]) -> float:
    """CPU seconds (user and system) of these processes so far; a gone process counts 0."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK


# -- child processes: drains and the plain client -------------------------------------


def _children(args: list[list[str]]) -> dict:
    """Start the children, wait until each is ready, start them together, collect answers.

    CPU is counted from the start signal to the last answer: the machine's, this
    process's (the fake's threads) and, as each child reports, its own and its
    PostgreSQL backends'.
    """
    processes = [
        subprocess.Popen([sys.executable, "-m", "tests.benchmarks.drain", *argv], cwd=ROOT, env=os.environ.copy(),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for argv in args
    ]
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        busy, fake = _machine_busy(), time.process_time()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        answers = []
        for process in processes:
            assert process.stdout is not None
            answers.append(process.stdout.readline())
        busy, fake = _machine_busy() - busy, time.process_time() - fake
        for process, line in zip(processes, answers, strict=True):
            if process.wait(timeout=600) != 0 or not line:
                raise RuntimeError(f"benchmark child {process.args} failed")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    found = [json.loads(line) for line in answers]
    seconds = max(a["ended"] for a in found) - min(a["started"] for a in found)
    clients = sum(a["cpu_seconds"] for a in found)
    postgres = sum(a.get("postgres_cpu_seconds", 0.0) for a in found)
    return {
        "answers": found,
        "seconds": round(seconds, 3),
        "cpu_seconds": {
            "clients": round(clients, 2), "their_postgres_backends": round(postgres, 2), "fake": round(fake, 2),
            "machine": round(busy, 2), "rest_of_machine": round(busy - clients - postgres - fake, 2),
            "cores_busy": round(busy / seconds, 2) if seconds else None,
        },
    }


def _drain_run(url: str, drains: int, queued: int, profile_dir: str | None = None) -> tuple[dict, list]:
    """``drains`` drain processes on the refilled queue: rate, requests, and exactly-once."""
    _refill(url)
    with FakeAfricasTalking(api_key=API_KEY) as fake:
        argv = [["drain", url, fake.base_url] + ([str(Path(profile_dir) / f"drain-{drains}-{n}.prof")]
                                                  if profile_dir else []) for n in range(drains)]
        run = _children(argv)
        received = fake.received()
        made = [(r.message, list(r.recipients), r.sender_id) for r in fake.requests if r.answer == "201"]
        answers = dict(fake.answers())
    states = _states(url)
    duplicates = sum(1 for count in received.values() if count > 1)
    sent = sum(a["sent"] for a in run["answers"])
    cpu = run["cpu_seconds"]
    return {
        "drains": drains,
        "seconds": run["seconds"],
        "messages_per_s": round(sent / run["seconds"], 1) if run["seconds"] else None,
        "sent": sent,
        "gateway_requests": len(fake.requests),
        "fake_answers": answers,
        "drain_passes": [a["passes"] for a in run["answers"]],
        "cpu_seconds": cpu,
        # Where one message's CPU goes: the drain process, its PostgreSQL backend, the fake.
        "cpu_us_per_message": {
            name: round(cpu[key] / sent * 1e6, 1) if sent else None
            for name, key in (("drain", "clients"), ("postgres", "their_postgres_backends"), ("fake", "fake"))
        },
        "every_message_sent_once": len(received) == queued and duplicates == 0 and states.get("sent", 0) == queued,
        "duplicates": duplicates,
    }, made


def _plain_run(made: list) -> dict:
    """The fake's rate for the requests one drain made, replayed by a bare client."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bench-drain-", delete=False) as handle:
        json.dump(made, handle)
    try:
        with FakeAfricasTalking(api_key=API_KEY) as fake:
            run = _children([["plain", fake.base_url, handle.name]])
    finally:
        os.unlink(handle.name)
    messages = sum(len(recipients) for _, recipients, _ in made)
    return {
        "requests": len(made), "messages": messages, "seconds": run["seconds"],
        "requests_per_s": round(len(made) / run["seconds"], 1), "messages_per_s": round(messages / run["seconds"], 1),
        "cpu_seconds": run["cpu_seconds"],
    }


def _best(runs: list[dict]) -> dict:
    return max(runs, key=lambda run: run["messages_per_s"] or 0)


def run(url: str, rounds: int = 3) -> dict:
    """One drain, the plain client on the same requests, two drains; each message once."""
    texts, queued, allowed = expected_requests(url)
    log(f"drain: {queued:,} bulletins, {texts} distinct texts, at most {allowed} requests allowed")
    _snapshot(url)
    profile_dir = os.environ.get("BENCH_PROFILE")
    one: list[dict] = []
    two: list[dict] = []
    plain: list[dict] = []
    try:
        for _ in range(rounds):
            result, made = _drain_run(url, 1, queued)
            one.append(result)
            log(f"drain: one drain {result['messages_per_s']} msg/s; plain client on its {len(made)} requests")
            plain.append(_plain_run(made))
            result, _ = _drain_run(url, 2, queued)
            two.append(result)
            log(f"drain: plain {plain[-1]['messages_per_s']} msg/s; two drains {result['messages_per_s']} msg/s")
        if profile_dir:
            # Profiled runs come last and count in no figure: cProfile slows a drain down.
            for drains in (1, 2):
                _drain_run(url, drains, queued, profile_dir)
            log(f"drain: profiles of one and two drains in {profile_dir}")
    finally:
        _drop_snapshot(url)
    best = _best(one)
    one_rate, two_rate = best["messages_per_s"], _best(two)["messages_per_s"]
    limit_rate = _best(plain)["messages_per_s"]
    # What the cores allow at best, at one drain's CPU cost per message (drain, PostgreSQL
    # and fake together), were nothing else running on the machine.
    per_message = sum(value or 0 for value in best["cpu_us_per_message"].values()) / 1e6
    cores = os.cpu_count() or 1
    return {
        "messages": queued,
        "distinct_texts": texts,
        "batch_size": BATCH,
        "requests_allowed": allowed,
        "figures_from": f"the fastest of {rounds} runs of each kind",
        "messages_per_s": one_rate,
        "one_drain": one,
        "plain_client_limit": {"messages_per_s": limit_rate, "runs": plain},
        "two_drains": two,
        "two_drains_messages_per_s": two_rate,
        "ratio_messages_per_s_to_limit": ratio(one_rate, limit_rate),
        "ratio_two_drains_to_one": ratio(two_rate, one_rate),
        "cpu_us_per_message": best["cpu_us_per_message"],
        "cpu_bound_messages_per_s": round(cores / per_message, 1) if per_message else None,
        "cpu_bound_ratio_to_one": ratio(cores / per_message if per_message else None, one_rate),
        "targets": {
            "ratio_to_limit_at_least_0.3": (ratio(one_rate, limit_rate) or 0) >= 0.3,
            "two_drains_at_least_1.7x": (ratio(two_rate, one_rate) or 0) >= 1.7,
            "one_drain_requests_within_allowed": all(r["gateway_requests"] <= allowed for r in one),
            "every_message_sent_once": all(r["every_message_sent_once"] for r in one + two),
        },
    }


# -- the children's side ----------------------------------------------------------------


def _wait_for_go() -> float:
    print("ready", flush=True)
    sys.stdin.readline()
    return time.monotonic()


def _drain_child(url: str, api_base: str, profile: str | None) -> dict:
    """One drain process: connect, wait for the start, drain everything."""
    db = Database(url)
    backends: list[int] = []
    sa.event.listen(db.engine, "connect", lambda connection, _: backends.append(connection.info.backend_pid))
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    # Once per process, not per message: configure the ORM before the clock starts.
    so.configure_mappers()
    gateway = AfricasTalkingGateway("sandbox", API_KEY, api_base=api_base)
    profiler = cProfile.Profile() if profile else None
    started = _wait_for_go()
    cpu, postgres = time.process_time(), _process_cpu(backends)
    if profiler is not None:
        profiler.enable()
    result = drain_all(db, gateway)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
        with open(f"{profile}.txt", "w") as text:
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
    ended = time.monotonic()
    cpu, postgres = time.process_time() - cpu, _process_cpu(backends) - postgres
    db.dispose()
    return {**result, "started": started, "ended": ended, "cpu_seconds": cpu, "postgres_cpu_seconds": postgres}


def _plain_child(api_base: str, path: str) -> dict:
    """Replay the drain's requests with bare ``requests`` calls, one after another."""
    with open(path) as handle:
        made = json.load(handle)
    url = api_base + PATH
    headers = {"Accept": "application/json", "apiKey": API_KEY}
    started = _wait_for_go()
    cpu = time.process_time()
    for message, recipients, sender_id in made:
        data = {"username": "sandbox", "to": ",".join(recipients), "message": message, "bulkSMSMode": 1}
        if sender_id:
            data["from"] = sender_id
        if len(recipients) >= ENQUEUE_FROM:
            data["enqueue"] = 1
        requests.post(url, headers=headers, data=data, timeout=30).raise_for_status()
    return {"started": started, "ended": time.monotonic(), "cpu_seconds": time.process_time() - cpu}


def main() -> None:
    """``drain URL API_BASE [PROFILE]`` or ``plain API_BASE REQUESTS.json``: one JSON line out."""
    kind, args = sys.argv[1], sys.argv[2:]
    answer = _drain_child(args[0], args[1], args[2] if len(args) > 2 else None) if kind == "drain" \
        else _plain_child(args[0], args[1])
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
