"""A loopback load generator: threads, each with a keep-alive http.client connection.

Closed loop (``saturate``): N clients play sessions back to back for a fixed time, the
throughput limit. Open loop (``paced``): sessions start at a fixed rate whatever the
server does, and a session's first hop is timed from its scheduled start, so a slow
server cannot hide its queueing (no coordinated omission).
"""
from __future__ import annotations

import http.client
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

from tests.benchmarks.common import percentiles

HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
TIMEOUT = 15.0


@dataclass(frozen=True)
class Hop:
    """One request: form fields and the screen kind expected back (CON, END or None: any)."""

    fields: dict[str, str]
    expect: str | None


@dataclass(frozen=True)
class Session:
    """A scripted session of hops sent one after another."""

    kind: str
    hops: list[Hop]


@dataclass
class Tally:
    """What a run saw, merged from every client thread."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # kind -> ms
    hops: int = 0
    sessions: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, ms: float, error: str | None, body: str) -> None:
        """Record one hop."""
        with self.lock:
            self.hops += 1
            self.latencies[kind].append(ms)
            if error:
                self.errors[error] += 1
                if len(self.samples) < 5:
                    self.samples.append(f"{error}: {body[:120]!r}")

    def summary(self, seconds: float) -> dict:
        """Throughput, latency percentiles (overall and per session kind), errors."""
        every = [ms for values in self.latencies.values() for ms in values]
        return {
            "seconds": round(seconds, 2),
            "hops": self.hops,
            "sessions": self.sessions,
            "hops_per_s": round(self.hops / seconds, 1) if seconds else None,
            "latency_ms": percentiles(every),
            "latency_ms_by_kind": {kind: percentiles(values) for kind, values in sorted(self.latencies.items())},
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "error_samples": self.samples,
        }


class Connection:
    """A keep-alive connection that reconnects once after the server dropped it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        """POST a form; (status, body)."""
        body = urlencode(fields).encode()
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body, HEADERS)
                answer = self.conn.getresponse()
                return answer.status, answer.read().decode("utf-8", "replace")
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # An idle keep-alive connection the server closed: reconnect, send again.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the socket."""
        self.conn.close()


def play(conn: Connection, path: str, session: Session, tally: Tally, late_ms: float = 0.0,
         check: bool = True) -> None:
    """Send a session's hops in order; the first hop's latency includes ``late_ms``."""
    for n, hop in enumerate(session.hops):
        start = time.perf_counter()
        error = None
        try:
            status, body = conn.post(path, hop.fields)
        except OSError as exc:
            status, body = 0, f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - start) * 1000 + (late_ms if n == 0 else 0.0)
        if status != 200:
            error = f"http {status}"
        elif check and hop.expect and not body.startswith(hop.expect + " "):
            error = f"expected {hop.expect}"
        elif not body.startswith(("CON ", "END ")):
            error = "not a USSD screen"
        tally.add(session.kind, ms, error, body)
        if error:
            return  # the rest of the session would only repeat the failure
    with tally.lock:
        tally.sessions += 1


def saturate(host: str, port: int, path: str, sessions: Iterator[Session], clients: int, seconds: float,
             max_hops: int, check: bool = True, tally: Tally | None = None) -> dict:
    """Closed loop: ``clients`` threads play sessions back to back for ``seconds``.

    With ``tally``, the hops are added to it (several runs summed); the summary returned
    is of this run's time over the whole tally.
    """
    tally = tally if tally is not None else Tally()
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    stop_hops = tally.hops + max_hops

    def next_session() -> Session | None:
        with lock:
            if time.perf_counter() >= stop_at or tally.hops >= stop_hops:
                return None
            return next(sessions, None)

    def client() -> None:
        conn = Connection(host, port)
        try:
            while (session := next_session()) is not None:
                play(conn, path, session, tally, check=check)
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally.summary(time.perf_counter() - started)


def paced(host: str, port: int, path: str, sessions: Iterator[Session], hops_per_s: float,
          mean_hops: float, seconds: float, pool: int = 64, check: bool = True) -> dict:
    """Open loop: start sessions at ``hops_per_s / mean_hops`` per second for ``seconds``."""
    tally = Tally()
    interval = mean_hops / hops_per_s
    work: queue.Queue[tuple[float, Session] | None] = queue.Queue()

    def worker() -> None:
        conn = Connection(host, port)
        try:
            while (item := work.get()) is not None:
                due, session = item
                late_ms = max(0.0, (time.perf_counter() - due) * 1000)
                play(conn, path, session, tally, late_ms=late_ms, check=check)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(pool)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    n = 0
    while (due := started + n * interval) < started + seconds:
        time.sleep(max(0.0, due - time.perf_counter()))
        session = next(sessions, None)
        if session is None:
            break
        work.put((due, session))
        n += 1
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join()
    result = tally.summary(time.perf_counter() - started)
    result["target_hops_per_s"] = round(hops_per_s, 1)
    return result


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run ``target(i)`` in ``count`` threads and wait for all."""
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
