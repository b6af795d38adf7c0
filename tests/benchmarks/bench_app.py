"""The real app plus benchmark-only routes: the load limits, and CPU time per request.

gunicorn serves ``tests.benchmarks.bench_app:create_app()`` in the benchmarks, so none of
this exists in production code.

- ``POST /bench/bare``: a constant USSD screen, no work behind it (the server's limit).
- ``POST /bench/rw``: one indexed read and one write of the USSD session row, committed:
  the least any real hop must do (the database's limit).
- With ``BENCH_CPU_LOG=PREFIX`` set, each worker appends one line per request to
  ``PREFIX.<pid>``: ``<monotonic seconds> <path> <CPU ms> <SQL statements>``, the CPU
  time of the request's thread from the first to the last hook plus that of the USSD
  hop's own thread, and the statements both sent. CLOCK_MONOTONIC is one clock for
  every process of the machine, so the benchmark picks each phase's lines by time.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, request

from smsgw import create_app as create_real_app
from smsgw.db import utcnow
from smsgw.models import UssdSession
from smsgw.web import webhooks
from smsgw.web.database import get_db, get_session

BARE_SCREEN = "CON 1 Prices\n2 Buyer standards\n3 Group orders\n4 Report a sale\n5 My SMS alerts\n6 Language"
_READ = (
    sa.select(UssdSession.id, UssdSession.hops)
    .where(UssdSession.session_id == sa.bindparam("session_id"))
    .with_for_update()
)


def bare() -> Response:
    """The same answer as a USSD hop's, without any work behind it."""
    return Response(BARE_SCREEN, status=200, mimetype="text/plain")


def read_write() -> Response:
    """The session row read by its unique id (locked), then inserted or updated; committed."""
    form = request.form
    session = get_session()
    found = session.execute(_READ, {"session_id": form.get("sessionId", "")}).first()
    if found is None:
        session.execute(sa.insert(UssdSession).values(
            session_id=form.get("sessionId", ""), phone=form.get("phoneNumber", "")[:16], state={},
            last_text=form.get("text", ""), hops=1,
        ))
    else:
        session.execute(sa.update(UssdSession).where(UssdSession.id == found.id).values(
            hops=found.hops + 1, last_text=form.get("text", ""), updated_at=utcnow(),
        ))
    session.commit()
    return Response(BARE_SCREEN, status=200, mimetype="text/plain")


_counted = threading.local()  # .statements: SQL statements this thread has sent


def _count_statement(*_: Any) -> None:
    _counted.statements = getattr(_counted, "statements", 0) + 1


def _statements() -> int:
    return getattr(_counted, "statements", 0)


class _TimedPool:
    """The USSD hop pool, recording each hop's thread CPU time and statements on the request (``g``)."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Submit ``fn(*args)``; its CPU milliseconds and statements land in ``g.bench_hop``."""
        holder: dict[str, float] = {}

        def timed() -> Any:
            start, sent = time.thread_time(), _statements()
            try:
                return fn(*args)
            finally:
                holder["ms"] = (time.thread_time() - start) * 1000
                holder["statements"] = _statements() - sent

        g.bench_hop = holder
        return self.pool.submit(timed)


class _CpuLog:
    """One worker's ``PREFIX.<pid>`` file, one line per request."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.fd: int | None = None
        self.pid = 0
        self.lock = threading.Lock()

    def write(self, path: str, ms: float, statements: int) -> None:
        """Append a line (opened on first use in each worker: gunicorn forks after import)."""
        with self.lock:
            if self.fd is None or self.pid != os.getpid():
                self.pid = os.getpid()
                self.fd = os.open(f"{self.prefix}.{self.pid}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(self.fd, f"{time.monotonic():.6f} {path} {ms:.4f} {statements}\n".encode())


def _measure_cpu(app: Flask, log: _CpuLog) -> None:
    """Hooks timing each request's thread, and the hop pool timing each hop's thread."""
    if not isinstance(webhooks._hop_workers, _TimedPool):
        webhooks._hop_workers = _TimedPool(webhooks._hop_workers)  # type: ignore[assignment]
    sa.event.listen(get_db(app).engine, "before_cursor_execute", _count_statement)

    @app.before_request
    def start() -> None:
        g.bench_start = (time.thread_time(), _statements())

    @app.after_request
    def stop(response: Response) -> Response:
        hop = g.get("bench_hop", {})
        ms = (time.thread_time() - g.bench_start[0]) * 1000 + hop.get("ms", 0.0)
        log.write(request.path, ms, _statements() - g.bench_start[1] + int(hop.get("statements", 0)))
        return response


def create_app() -> Flask:
    """The production app with ``POST /bench/bare`` and ``POST /bench/rw`` added."""
    app = create_real_app()
    app.add_url_rule("/bench/bare", "bench_bare", bare, methods=["POST"])
    app.add_url_rule("/bench/rw", "bench_rw", read_write, methods=["POST"])
    if os.environ.get("BENCH_CPU_LOG"):
        _measure_cpu(app, _CpuLog(os.environ["BENCH_CPU_LOG"]))
    return app
