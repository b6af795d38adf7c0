"""Run named child processes, restart any that exits, and stop them all on a signal.

`smsgw demo` uses it to own both the web server and the scheduler. Each child runs in a
process group of its own, so stopping a child also stops anything it started, and a
Ctrl-C at the terminal reaches only the supervisor, which then stops the children in order.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

FIRST_DELAY = 1.0  # seconds before the first restart of a child that exited
MAX_DELAY = 30.0  # a crash loop settles at one attempt every 30 s, never a spin
STABLE_AFTER = 60.0  # a child that ran this long is healthy again: its backoff starts over
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL when stopping
POLL = 0.2  # how often the children are checked; also the delay before reacting to a signal
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    """One supervised command and the state of its current run."""

    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0  # exits in a row without a stable run; sets the backoff
    restart_at: float | None = None


def _load_prctl() -> Callable[..., int] | None:
    """Find libc's prctl (Linux), resolved once here rather than in a freshly forked child."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _die_with_parent(parent: int) -> Callable[[], None]:
    """Return a pre-exec hook asking the kernel to SIGTERM the child if the supervisor dies."""

    def hook() -> None:
        # A SIGKILLed supervisor cannot run its handlers; the kernel's parent-death signal
        # still stops the child instead of leaving it orphaned. Best effort off Linux.
        if _prctl is None or _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM)) != 0:
            return
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return hook


def _say(line: str) -> None:
    print(line, flush=True)


class Supervisor:
    """Start the given commands, keep them running, and stop them all on SIGTERM/SIGINT/SIGHUP."""

    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        *,
        env: Mapping[str, str] | None = None,
        say: Callable[[str], None] = _say,
    ) -> None:
        self.children = [Child(name, list(argv)) for name, argv in commands.items()]
        self.env = dict(env) if env is not None else None
        self.say = say
        self.stop_signal: int | None = None

    def run(self) -> int:
        """Supervise until a stop signal arrives, then stop every child and return 0."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            for child in self.children:
                self._start(child)
            while self.stop_signal is None:
                self._watch(time.monotonic())
                time.sleep(POLL)
        finally:
            # Also reached on an unexpected error: children must never outlive us.
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only record it: the loop notices within POLL and stops children outside the handler.
        self.stop_signal = signum

    def _start(self, child: Child) -> subprocess.Popen[bytes]:
        # Output already buffered here must reach the terminal before the child's.
        sys.stdout.flush()
        sys.stderr.flush()
        process = child.process = subprocess.Popen(
            child.argv,
            env=self.env,
            process_group=0,  # its own group: killpg reaches grandchildren, Ctrl-C does not
            # PR_SET_PDEATHSIG has no other door than preexec_fn; the supervisor starts
            # children from its main thread only.
            preexec_fn=_die_with_parent(os.getpid()),  # noqa: PLW1509
        )
        child.started = time.monotonic()
        child.restart_at = None
        return process

    def _watch(self, now: float) -> None:
        """Notice children that exited, schedule their restart with backoff, start due ones."""
        for child in self.children:
            if child.process is not None and _exited(child.process):
                code = _reap(child.process)
                child.process = None
                if now - child.started >= STABLE_AFTER:
                    child.failures = 0
                delay = min(FIRST_DELAY * 2**child.failures, MAX_DELAY)
                child.failures += 1
                child.restart_at = now + delay
                self.say(f"{child.name} exited (code {code}); restarting in {delay:g} s")
            elif child.process is None and child.restart_at is not None and now >= child.restart_at:
                process = self._start(child)
                self.say(f"{child.name} restarted (pid {process.pid})")

    def _stop_all(self) -> None:
        """SIGTERM every child's group, wait up to STOP_GRACE, then SIGKILL what is left."""
        running = [c.process for c in self.children if c.process is not None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while running and time.monotonic() < deadline:
            for process in [p for p in running if _exited(p)]:
                _reap(process)
                running.remove(process)
            time.sleep(0.05)
        for process in running:
            _signal_group(process, signal.SIGKILL)
            _reap(process)
        for child in self.children:
            child.process = None
            child.restart_at = None


def _exited(process: subprocess.Popen) -> bool:
    """Tell whether the child has exited, leaving it unreaped (a zombie holds its pid)."""
    try:
        # WNOWAIT: while the zombie exists its pid, and so its group id, cannot be reused,
        # which makes the SIGKILL sweep in _reap safe.
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped elsewhere
        return True


def _reap(process: subprocess.Popen) -> int:
    """Kill whatever the child left behind in its group, then collect its exit code."""
    _signal_group(process, signal.SIGKILL)
    return process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    """Send sig to the child's whole process group (it is the group's leader)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone
