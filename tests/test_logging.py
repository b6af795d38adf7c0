"""Logging in every process: one format, INFO by default, JSON on request, and neither
the webhook token nor a full phone number in any line, tracebacks included.

Real processes, as deployed: gunicorn started from the Procfile's ``web`` line, the
Procfile's ``smsgw scheduler``, and ``smsgw`` commands, each on a database of the test's
own. Each one handles AT callbacks or drains the outbox against an AT address where
nothing listens, then meets a database error that quotes a phone number; everything it
writes is read back and searched.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import sqlalchemy as sa

from smsgw.config import PROJECT_ROOT, ConfigError, load_settings
from smsgw.db import Database
from smsgw.logs import StderrHandler, configure_logging
from smsgw.messaging.outbox import enqueue
from tests.support.databases import BACKENDS, fresh_database
from tests.support.ports import free_port, refusing_port

TOKEN = "Tk-log-3f9a7c21-secret"
AT_API_KEY = "atsk-0d1e2f3a4b5c6d7e"
# A caller, a texter, and a recipient of queued messages: none of them a demo contact.
CALLER, TEXTER, RECIPIENT = "+254711222333", "+254722333444", "+254733444555"
PHONES = (CALLER, TEXTER, RECIPIENT)
FIELDS = ("time", "level", "process", "pid", "logger", "message")
BIN = Path(sys.executable).parent


def _leaks(text: str) -> list[str]:
    """Lines that carry the token, the AT key or a full phone number in any form."""
    needles = [TOKEN, AT_API_KEY]
    for phone in PHONES:
        needles += [phone, phone[1:], "0" + phone[4:], quote(phone, safe="")]
    return [line for line in text.splitlines() if any(needle.lower() in line.lower() for needle in needles)]


def _procfile(name: str) -> str:
    """The Procfile's command for a process type."""
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} process in the Procfile")


@pytest.fixture()
def dead_port() -> Iterator[int]:
    """A port bound but never listening: connecting to it is refused at once."""
    with refusing_port() as port:
        yield port


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path) -> Iterator[str]:
    """A migrated, seeded database of the test's own."""
    with fresh_database(tmp_path, request.param) as url:
        yield url


@pytest.fixture(params=["text", "json"])
def log_format(request) -> str:
    """SMSGW_LOG_FORMAT for the processes."""
    return request.param


@pytest.fixture()
def env(database, tmp_path, dead_port, log_format) -> dict[str, str]:
    """The processes' environment: a token, the AT gateway at a dead address, the venv first."""
    base = {key: value for key, value in os.environ.items() if not key.startswith(("SMSGW_", "AT_"))}
    return {
        **base,
        "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database,
        "SMSGW_INSTANCE_DIR": str(tmp_path),
        "WEBHOOK_TOKEN": TOKEN,
        "SMSGW_GATEWAY": "africastalking",
        "AT_USERNAME": "sandbox",
        "AT_API_KEY": AT_API_KEY,
        "AT_API_BASE": f"http://127.0.0.1:{dead_port}",
        "SMSGW_LOG_FORMAT": log_format,
    }


def _enqueue(url: str, phone: str, key: str) -> None:
    db = Database(url)
    try:
        with db.session() as session:
            enqueue(session, to=phone, text="Maize Nakuru 4,300", purpose="reply", key=key)
            session.commit()
    finally:
        db.dispose()


def _ddl(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _refuse_sending(url: str) -> None:
    """A database error whose text names a recipient: every claim of a message fails."""
    if url.startswith("sqlite"):
        _ddl(
            url,
            "CREATE TRIGGER refuse_sending BEFORE UPDATE ON outbound_message BEGIN SELECT RAISE(ABORT, 'no sending "
            f"to {RECIPIENT}'); END",
        )
        return
    _ddl(  # psycopg reads % as a placeholder mark: %% is one %
        url,
        "CREATE FUNCTION refuse_sending() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'no sending to %%', NEW.to_phone; END $$",
        "CREATE TRIGGER refuse_sending BEFORE UPDATE ON outbound_message FOR EACH ROW EXECUTE FUNCTION "
        "refuse_sending()",
    )


def _wait_for(path: Path, pattern: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not re.search(pattern, path.read_text()):
        assert process.poll() is None, path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {pattern!r} in:\n{path.read_text()[-3000:]}"
        time.sleep(0.1)


def _check(
    stdout: str, stderr: str, process: str, log_format: str, *, shown: Callable[[str], bool] = lambda _: False
) -> list[dict]:
    """Nothing leaked, INFO lines written; the log records (parsed when JSON)."""
    assert _leaks(stderr) == []
    # stdout is the command's own output: only what it is meant to show may name a phone.
    assert [line for line in _leaks(stdout) if not shown(line)] == []
    lines = [line for line in stderr.splitlines() if line.strip()]
    if log_format == "json":
        records = []
        for line in lines:
            if line.startswith("Error: "):  # click's one-line error, not a log record
                continue
            record = json.loads(line)
            assert set(FIELDS) <= set(record) and record["process"] == process, record
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), record
            records.append(record)
    else:
        pattern = re.compile(
            rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}}Z {process}\[(\d+)\] ([A-Z]+) ([\w.]+): (.*)$"
        )
        records = []
        for line in lines:
            found = pattern.match(line)
            if found:
                records.append({"pid": int(found[1]), "level": found[2], "logger": found[3], "message": found[4]})
            else:
                assert records or line.startswith("Error: "), line  # a traceback belongs to a record
                if records:
                    records[-1].setdefault("exc_info", "")
                    records[-1]["exc_info"] += line + "\n"
    assert any(record["level"] == "INFO" for record in records), stderr[-3000:]
    return records


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _ussd(base: str, session_id: str, **headers: str) -> requests.Response:
    fields = {
        "sessionId": session_id,
        "phoneNumber": CALLER,
        "serviceCode": "*384*7#",
        "networkCode": "63902",
        "text": "",
    }
    # A phone number in the query string too: the access line must mask it.
    url = f"{base}/at/ussd?token={TOKEN}&phoneNumber={quote(CALLER, safe='')}"
    return requests.post(url, data=fields, headers=headers, timeout=30)


def _sms(base: str, gateway_id: str, token: str = TOKEN) -> requests.Response:
    fields = {
        "from": TEXTER,
        "to": "22384",
        "text": "PRICE MAIZE",
        "id": gateway_id,
        "date": "2025-03-01 08:15:00",
        "linkId": "",
        "networkCode": "63902",
    }
    return requests.post(f"{base}/at/sms?token={token}", data=fields, timeout=30)


def test_the_web_process_under_gunicorn(database, env, tmp_path, log_format) -> None:
    port = free_port()
    command = _procfile("web").replace("0.0.0.0:", "127.0.0.1:")
    out, err = tmp_path / "web.out", tmp_path / "web.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        server = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], env={**env, "PORT": str(port), "SMSGW_PROXY_HOPS": "1"},
            cwd=tmp_path, stdout=stdout, stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=10)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, err.read_text()[-3000:]
                time.sleep(0.2)
        hop = _ussd(base, "log-ussd-1", **{"X-Forwarded-For": "203.0.113.9"})
        assert hop.status_code == 200 and hop.text.startswith("CON "), hop.text
        assert _sms(base, "log-sms-1").status_code == 200
        assert _sms(base, "log-sms-2", token="wrong-token").status_code == 403
        # The database loses two tables: the errors quote the SQL and its parameters.
        _ddl(
            database,
            "ALTER TABLE ussd_session RENAME TO ussd_session_away",
            "ALTER TABLE outbound_message RENAME TO outbound_message_away",
        )
        assert _ussd(base, "log-ussd-2").text.startswith("END "), "the caller gets the apology"
        _sms(base, "log-sms-3")
        _wait_for(err, r"inbound SMS \d+ from", server)
        _wait_for(err, r"USSD hop failed", server)
    finally:
        _stop(server)
    records = _check(out.read_text(), err.read_text(), "web", log_format)
    access = [record["message"] for record in records if record["logger"] == "gunicorn.access"]
    assert len(access) >= 5 and all("token=[redacted]" in line for line in access if "/at/" in line), access
    assert any(line.startswith("203.0.113.9 ") for line in access), "behind a proxy the log shows the client"
    assert any(record["logger"] == "gunicorn.error" and record["level"] == "INFO" for record in records)
    failures = [record for record in records if "exc_info" in record]
    assert failures and all("Traceback" in record["exc_info"] for record in failures)
    tracebacks = "".join(record["exc_info"] for record in failures)
    assert "+254*******44" in tracebacks or "+254*******33" in tracebacks, tracebacks[-3000:]


def test_the_scheduler(database, env, tmp_path, log_format) -> None:
    _enqueue(database, CALLER, "log:1")
    out, err = tmp_path / "scheduler.out", tmp_path / "scheduler.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        scheduler = subprocess.Popen(
            ["bash", "-c", f"exec {_procfile('scheduler')}"], env=env, cwd=tmp_path, stdout=stdout, stderr=stderr
        )
    try:
        _wait_for(err, r"africastalking: ConnectionError", scheduler)  # a drain against nothing
        _refuse_sending(database)
        _enqueue(database, RECIPIENT, "log:2")
        _wait_for(err, r"job drain_job failed", scheduler)
    finally:
        _stop(scheduler)
    records = _check(out.read_text(), err.read_text(), "scheduler", log_format)
    assert any(record["level"] == "INFO" and "scheduler started" in record["message"] for record in records)
    failed = next(record["message"] for record in records if "job drain_job failed" in record["message"])
    assert "+254*******55" in failed, failed
    # APScheduler's line for every run of the drain stays out at INFO.
    assert not [
        record for record in records if record["logger"].startswith("apscheduler") and record["level"] == "INFO"
    ]


def test_the_command_line(database, env, tmp_path, log_format) -> None:
    def smsgw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "smsgw"), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )

    runs = [smsgw("init")]  # Alembic's INFO lines
    runs.append(smsgw("simulate", "sms", "--phone", TEXTER, "PRICE MAIZE"))
    assert runs[-1].returncode == 0, runs[-1].stderr
    _enqueue(database, CALLER, "log:1")
    runs.append(smsgw("outbox", "drain"))  # AT where nothing listens: to retry
    assert runs[-1].returncode == 0 and "to retry 1" in runs[-1].stdout, runs[-1].stdout + runs[-1].stderr
    _refuse_sending(database)
    _enqueue(database, RECIPIENT, "log:2")
    runs.append(smsgw("outbox", "drain"))  # the database refuses, naming the recipient
    assert runs[-1].returncode != 0
    # The console gateway shows the reply as a phone would: its header names the number.
    console = "--- SMS to "
    records = _check(
        "".join(run.stdout for run in runs),
        "".join(run.stderr for run in runs),
        "cli",
        log_format,
        shown=lambda line: line.startswith(console),
    )
    assert console + TEXTER in runs[1].stdout
    uncaught = [record for record in records if record["level"] == "CRITICAL"]
    assert uncaught and "Traceback" in uncaught[0]["exc_info"] and "+254*******55" in uncaught[0]["exc_info"]


SCRIPT = """
import logging, os, sys, threading
from smsgw.logs import configure_logging
configure_logging(os.environ, "cli")
configure_logging(os.environ, "cli")
assert len(logging.getLogger().handlers) == 1
logging.getLogger("urllib3.connectionpool").info("POST /send?token=%s&to=%s", "abc", "+254711222333")
logging.getLogger("somelib").warning("two args %s %s", "+254722333444")  # a broken call
threading.Thread(target=lambda: 1 / 0 if "+254733444555" else 0).start()
raise RuntimeError("the end for +254711222333 and " + os.environ["WEBHOOK_TOKEN"])
"""


def test_any_library_thread_or_uncaught_error_is_redacted(log_format) -> None:
    env = {**os.environ, "WEBHOOK_TOKEN": TOKEN, "SMSGW_LOG_FORMAT": log_format, "SMSGW_LOG_LEVEL": "info"}
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 1 and run.stdout == ""
    assert _leaks(run.stderr) == []
    assert "POST /send?token=[redacted]&to=+254*******33" in run.stderr
    assert "--- Logging error ---" in run.stderr and "+254*******44" in run.stderr
    assert (
        "ZeroDivisionError" in run.stderr
        and "RuntimeError: the end for +254*******33 and [redacted]" in run.stderr.replace("\\n", "\n")
    )


def test_configuring_again_keeps_one_handler(monkeypatch) -> None:
    root = logging.getLogger()
    for process in ("web", "cli", "web"):
        configure_logging({"SMSGW_LOG_FORMAT": "json", "WEBHOOK_TOKEN": TOKEN}, process)
    assert len([h for h in root.handlers if isinstance(h, StderrHandler)]) == 1
    configure_logging({"SMSGW_LOG_LEVEL": "warning"}, "web")
    handler = next(h for h in root.handlers if isinstance(h, StderrHandler))
    # The handler holds back INFO even from loggers with a level of their own (gunicorn's).
    assert handler.level == root.level == logging.WARNING
    configure_logging({}, "web")  # back to the defaults: text, INFO
    assert root.level == handler.level == logging.INFO


@pytest.mark.parametrize(
    ("key", "value"),
    [("SMSGW_LOG_FORMAT", "xml"), ("SMSGW_LOG_LEVEL", "loud"), ("SMSGW_LOG_LEVEL", "10")],
)
def test_wrong_log_settings_are_refused(monkeypatch, key, value) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=key):
        load_settings()
    with pytest.raises(ConfigError, match=key):
        configure_logging(os.environ, "cli")


def test_the_procfile_runs_gunicorn_with_the_logging_config() -> None:
    assert "-c python:smsgw.gunicorn_conf" in shlex.join(shlex.split(_procfile("web")))
