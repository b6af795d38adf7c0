"""The real `smsgw demo` supervises its children: a killed scheduler comes back, and a
SIGTERM or SIGINT to the demo stops web and scheduler both, leaving no process behind.

Each test runs the command in a subprocess against a database and instance folder of its
own under tmp_path, and reads its children from /proc (Linux only).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port
from tests.support.prerequisites import prerequisite

pytestmark = prerequisite(Path("/proc/self/stat").exists(), "reads /proc")

READY_TIMEOUT = 120  # migrate + seed + two Python start-ups on a busy 2-core machine
STOP_TIMEOUT = 20


class Demo:
    """A running `smsgw demo` and where its output goes."""

    def __init__(self, process: subprocess.Popen, port: int, output: Path) -> None:
        self.process, self.port, self.output = process, port, output

    def text(self) -> str:
        """Everything the demo and its children printed so far."""
        return self.output.read_text(errors="replace")

    def ussd(self) -> str | None:
        """POST a first USSD hop as Africa's Talking would; the body, or None if not up."""
        form = {
            "sessionId": f"sup-{time.monotonic_ns()}",
            "phoneNumber": "+254700000001",
            "serviceCode": "*384*1#",
            "networkCode": "63902",
            "text": "",
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/at/ussd",
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None


def _wait_for(check, timeout: float, what: str, demo: Demo):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (result := check()):
            return result
        assert demo.process.poll() is None, f"demo exited early:\n{demo.text()[-3000:]}"
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; demo printed:\n{demo.text()[-3000:]}")


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(child) for child in found]


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _started(pid: int) -> str | None:
    """The start time of a live (not zombie) process, or None once it is gone.

    Compared with the value recorded earlier, it tells the same process from a recycled pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, *fields = stat[stat.rindex(")") + 2 :].split()
    return None if state in ("Z", "X") else fields[18]


def _snapshot(pid: int) -> dict[int, str]:
    """Every live descendant of pid, with its start time."""
    found = {child: _started(child) for child in _descendants(pid)}
    return {child: started for child, started in found.items() if started is not None}


def _scheduler(demo: Demo) -> int | None:
    found = [pid for pid in _children(demo.process.pid) if "scheduler" in _cmdline(pid)]
    return found[0] if len(found) == 1 else None


@pytest.fixture
def demo(tmp_path) -> Iterator[Demo]:
    """`smsgw demo` on a free port, answering USSD; killed with its group if a test fails."""
    port = free_port()
    output = tmp_path / "demo.out"
    env = {
        **os.environ,
        "SMSGW_INSTANCE_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "SMSGW_GATEWAY": "console",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("WEBHOOK_TOKEN", None)
    # Output to a file, not a pipe: a pipe nobody reads fills and blocks the children.
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "smsgw", "demo", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = Demo(process, port, output)
    watched: dict[int, str] = {}
    try:
        _wait_for(lambda: (running.ussd() or "").startswith("CON "), READY_TIMEOUT, "USSD", running)
        watched = _snapshot(process.pid)
        yield running
    finally:
        if process.poll() is None:
            watched.update(_snapshot(process.pid))
            process.kill()
        process.wait(timeout=STOP_TIMEOUT)
        for pid, started in watched.items():  # a failed test must not leave servers behind
            if _started(pid) == started:
                os.kill(pid, signal.SIGKILL)


def test_a_killed_scheduler_is_restarted(demo: Demo) -> None:
    first = _wait_for(lambda: _scheduler(demo), 30, "the scheduler child", demo)
    os.kill(first, signal.SIGKILL)
    second = _wait_for(
        lambda: (pid := _scheduler(demo)) and pid != first and pid, 30, "a new scheduler", demo
    )
    assert second != first
    lines = [line for line in demo.text().splitlines() if "scheduler" in line and "restart" in line]
    assert lines, demo.text()[-3000:]
    assert "-9" in lines[0]  # the line says why: killed by SIGKILL
    assert (demo.ussd() or "").startswith("CON ")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_web_and_scheduler_both(demo: Demo, sig: signal.Signals) -> None:
    _wait_for(lambda: _scheduler(demo), 30, "the scheduler child", demo)
    family = _snapshot(demo.process.pid)
    commands = " | ".join(_cmdline(pid) for pid in family)
    assert "serve" in commands and "scheduler" in commands

    demo.process.send_signal(sig)
    assert demo.process.wait(timeout=STOP_TIMEOUT) == 0, demo.text()[-3000:]

    survivors = [pid for pid, started in family.items() if _started(pid) == started]
    assert not survivors, [(pid, _cmdline(pid)) for pid in survivors]
    assert demo.ussd() is None


def test_children_stop_even_if_the_demo_is_killed(demo: Demo) -> None:
    """SIGKILL leaves the demo no chance to clean up; the kernel's parent-death signal does."""
    _wait_for(lambda: _scheduler(demo), 30, "the scheduler child", demo)
    family = _snapshot(demo.process.pid)
    demo.process.kill()
    demo.process.wait(timeout=STOP_TIMEOUT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while True:
        survivors = [pid for pid, started in family.items() if _started(pid) == started]
        if not survivors or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not survivors, [(pid, _cmdline(pid)) for pid in survivors]
