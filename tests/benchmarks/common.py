"""Shared pieces: scales, progress on stderr, a throwaway PostgreSQL database, gunicorn."""
from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_SERVER = os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
_START = time.monotonic()


@dataclass(frozen=True)
class Scale:
    """How big each benchmark is; ``full`` is the issue's numbers."""

    name: str
    contacts: int  # farmers, 3 alerts each
    small_contacts: int  # the fan-out is also run at this size, to see memory stay flat
    ussd_seconds: float  # each load phase (bare, USSD saturation, USSD at half load)
    ussd_clients: int  # concurrent clients in the saturation runs
    inbound: int  # inbound SMS per burst
    sales: int  # analytics: sale reports
    reference_prices: int  # analytics: reference prices
    import_rows: int  # generated generic price file
    drain_rounds: int = 3  # runs of each drain kind (one drain, plain client, two drains)


SCALES = {
    "small": Scale("small", 10_000, 1_000, 8, 16, 1_000, 100_000, 50_000, 100_000),
    "full": Scale("full", 100_000, 10_000, 30, 16, 10_000, 1_000_000, 500_000, 1_000_000),
    # The morning bulletin of a million subscribers: run with --only fanout,drain.
    "million": Scale("million", 1_000_000, 100_000, 30, 16, 10_000, 1_000_000, 500_000, 1_000_000, drain_rounds=1),
}


def log(message: str) -> None:
    """Progress line on stderr (stdout carries only the JSON summary)."""
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles, in the values' unit, rounded for the report."""
    ordered = sorted(values)
    found: dict[str, float | None] = {}
    for point in points:
        if not ordered:
            found[f"p{point}"] = None
            continue
        rank = max(0, min(len(ordered) - 1, round(point / 100 * len(ordered) + 0.5) - 1))
        found[f"p{point}"] = round(ordered[rank], 2)
    return found


def ratio(value: float | None, limit: float | None) -> float | None:
    """value / limit, or None when either is missing."""
    if not value or not limit:
        return None
    return round(value / limit, 3)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child started by a
    big parent would report the parent's peak as its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- PostgreSQL -----------------------------------------------------------------------


def _admin_engine() -> sa.Engine:
    return sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")


def create_database() -> tuple[str, str]:
    """A new empty database ``smsgw_bench_<random>``; returns (name, SQLAlchemy URL)."""
    name = f"smsgw_bench_{secrets.token_hex(4)}"
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return name, f"{PG_SERVER}/{name}"


def drop_database(name: str) -> None:
    """Drop the benchmark database, closing whatever is still connected to it."""
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


def psycopg_dsn(url: str) -> str:
    """The libpq form of a ``postgresql+psycopg://`` URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# -- gunicorn -------------------------------------------------------------------------


def procfile_flags() -> list[str]:
    """The web process's --workers and --threads flags, read from the Procfile."""
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    flags: list[str] = []
    for name in ("workers", "threads"):
        found = re.search(rf"--{name}[ =](\d+)", web)
        if found:
            flags += [f"--{name}", found.group(1)]
    return flags


@dataclass
class Server:
    """A running gunicorn: where it listens and its log file."""

    host: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def gunicorn(database_url: str, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """gunicorn with the Procfile's flags, serving the benchmark wrapper app on loopback."""
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115 (closed in finally)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WEBHOOK_TOKEN": "",
        "SMSGW_ENV": "development",
        "SMSGW_GATEWAY": "console",
        **(extra_env or {}),
    }
    cmd = [
        str(VENV_BIN / "gunicorn"), *procfile_flags(), "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning", "tests.benchmarks.bench_app:create_app()",
    ]
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server("127.0.0.1", port, Path(log_file.name), process)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


def _wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://{server.host}:{server.port}/bench/bare"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {server.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=b"x=1"), timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer in time")


def server_errors(server: Server) -> list[str]:
    """Tracebacks and errors gunicorn logged (first lines only)."""
    text = server.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if "Error" in line or "Traceback" in line][:20]


def run_child(task: str, args: list[str], database_url: str | None = None, profile: str | None = None) -> dict:
    """``tests.benchmarks.child`` in its own process: its seconds, peak RSS and output."""
    with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
        out = Path(tmp) / "result.json"
        env = {**os.environ}
        if database_url:
            env["DATABASE_URL"] = database_url
        if profile:
            env["BENCH_PROFILE"] = profile
        cmd = [sys.executable, "-m", "tests.benchmarks.child", str(out), task, *args]
        done = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"{task} {' '.join(args)} failed: {done.stderr[-3000:]}")
        return json.loads(out.read_text())
