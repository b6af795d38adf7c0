"""`smsgw doctor`: all green on a good set-up, and each fault alone turns its own line red.

The command runs for real (`python -m smsgw doctor`) against a database of the test's
own, with the Africa's Talking gateway pointed at the fake AT API.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from smsgw import config
from smsgw.cli import doctor as cli_doctor
from smsgw.cli import main
from smsgw.db import Database, utcnow
from smsgw.models import OutboundMessage
from smsgw.services import runtime_state
from tests.fake_at import FakeAfricasTalking
from tests.support.databases import BACKENDS, fresh_database

API_KEY = "doctor-key"
# A migration older than the latest: the schema of a deployment not yet upgraded.
OLDER_REVISION = "88e10bc11819"
NAMES = [
    "database", "schema", "gateway", "sender ids", "webhook token", "secret key",
    "scheduler", "replies", "sending", "leases", "disk",
]
LINE = re.compile(r"^(OK|FAIL) +([a-z ]+): (.+)$")
KEY_PREFIX = "test:doctor:"


@dataclass(frozen=True)
class Deployment:
    """A seeded database of the module's own, and its backend."""

    backend: str
    url: str


@dataclass(frozen=True)
class Report:
    """What one run of the doctor printed and returned."""

    code: int
    lines: dict[str, tuple[bool, str]]
    stderr: str

    def failing(self) -> set[str]:
        """The names of the red lines."""
        return {name for name, (ok, _) in self.lines.items() if not ok}

    def detail(self, name: str) -> str:
        """The text after ``name:``."""
        return self.lines[name][1]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAfricasTalking]:
    """The fake AT API, with our key."""
    with FakeAfricasTalking(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture(scope="module", params=BACKENDS)
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A migrated database seeded with the demo (contacts in Kenya and Senegal)."""
    with fresh_database(tmp_path_factory.mktemp("doctor"), request.param) as url:
        yield Deployment(request.param, url)


@contextmanager
def _session(url: str):
    db = Database(url)
    try:
        with db.session() as session:
            yield session
    finally:
        db.dispose()


@pytest.fixture()
def good(deployment: Deployment, fake: FakeAfricasTalking) -> Iterator[dict[str, str]]:
    """The environment of a good production set-up: fresh heartbeat, nothing stuck."""
    _reset(deployment.url)
    yield _env(deployment.url, fake)
    _reset(deployment.url)


def _reset(url: str) -> None:
    with _session(url) as session:
        runtime_state.put(session, runtime_state.SCHEDULER, {"pid": 4242, "host": "test"})
        runtime_state.clear(session, runtime_state.GATEWAY_PAUSE)
        session.execute(sa.delete(OutboundMessage).where(OutboundMessage.idempotency_key.startswith(KEY_PREFIX)))


def _env(url: str, fake: FakeAfricasTalking, **changes: str | None) -> dict[str, str]:
    """This process's environment without any smsgw setting, then ours, then ``changes``."""
    ours = set(config._defaults()) | {"SMSGW_INSTANCE_DIR"}
    env = {key: value for key, value in os.environ.items() if key not in ours}
    env.update({
        "DATABASE_URL": url,
        "SMSGW_ENV": "production",
        "SECRET_KEY": "doctor-secret-" + uuid.uuid4().hex,
        "WEBHOOK_TOKEN": "doctor-token-" + uuid.uuid4().hex,
        "SMSGW_GATEWAY": "africastalking",
        "AT_USERNAME": "smsgw-test",
        "AT_API_KEY": API_KEY,
        "AT_API_BASE": fake.base_url,
        "SMSGW_SENDER_IDS": "KE=SOKO,SN=SOKOSN",
    })
    return _changed(env, **changes)


def _changed(env: dict[str, str], **changes: str | None) -> dict[str, str]:
    """``env`` with ``changes``; a None removes the variable."""
    env = {**env, **{key: value for key, value in changes.items() if value is not None}}
    return {key: value for key, value in env.items() if changes.get(key, "") is not None}


def _parse(code: int, stdout: str, stderr: str) -> Report:
    lines: dict[str, tuple[bool, str]] = {}
    for line in stdout.splitlines():
        match = LINE.match(line)
        assert match, f"not a doctor line: {line!r}\n{stdout}"
        lines[match[2]] = (match[1] == "OK", match[3])
    assert list(lines) == NAMES, stdout
    return Report(code, lines, stderr)


def _doctor(env: dict[str, str]) -> Report:
    result = subprocess.run(
        [sys.executable, "-m", "smsgw", "doctor"], check=False, capture_output=True, text=True, env=env, timeout=90
    )
    assert "Traceback" not in result.stderr, result.stderr
    return _parse(result.returncode, result.stdout, result.stderr)


def _only(report: Report, name: str) -> str:
    """Assert ``name`` is the one red line and the exit code is 1; its detail."""
    assert report.failing() == {name}, report.lines
    assert report.code == 1
    return report.detail(name)


def test_all_green_on_a_good_setup(good, fake) -> None:
    before = len(fake.requests)
    report = _doctor(good)
    assert report.failing() == set(), report.lines
    assert report.code == 0
    assert "KES 1234.00" in report.detail("gateway")
    assert "KE SOKO" in report.detail("sender ids") and "SN SOKOSN" in report.detail("sender ids")
    # The gateway check asked for the account's data, with our key, and sent nothing.
    assert fake.lookups[-1] == ("smsgw-test", API_KEY, "200")
    assert len(fake.requests) == before and not fake.deliveries


def test_a_wrong_api_key_is_the_gateway_line(good, fake) -> None:
    detail = _only(_doctor({**good, "AT_API_KEY": "not-the-key"}), "gateway")
    assert "refused the API key (HTTP 401)" in detail and "AT_API_KEY" in detail
    assert fake.lookups[-1][2] == "401"


def test_an_unreachable_database_is_one_line_and_the_rest_not_checked(good, deployment, tmp_path) -> None:
    if deployment.backend == "sqlite":
        missing = tmp_path / "nowhere" / "smsgw.db"
        url = f"sqlite:///{missing}"
    else:
        url = sa.make_url(deployment.url).set(host="127.0.0.1", port=1).render_as_string(hide_password=False)
    report = _doctor({**good, "DATABASE_URL": url})
    assert report.code == 1
    assert not report.lines["database"][0]
    assert report.failing() == {"database", "schema", "sender ids", "scheduler", "replies", "sending", "leases"}
    assert all(report.detail(name) == "not checked: no database" for name in report.failing() - {"database"})
    if deployment.backend == "sqlite":
        assert "no database file" in report.detail("database")
        assert not missing.parent.exists(), "the doctor must not create the database"
    else:
        assert "cannot connect" in report.detail("database") and "DATABASE_URL" in report.detail("database")


def test_a_schema_behind_the_latest_migration_says_run_init(good, deployment, tmp_path) -> None:
    with fresh_database(tmp_path, deployment.backend, seed=False, revision=OLDER_REVISION) as url:
        report = _doctor({**good, "DATABASE_URL": url})
    assert report.code == 1
    assert not report.lines["schema"][0]
    assert OLDER_REVISION in report.detail("schema") and "run `smsgw init`" in report.detail("schema")
    # Checks that need the newer tables say so instead of crashing.
    for name in report.failing() - {"schema"}:
        assert "run `smsgw init` first" in report.detail(name), report.lines
    assert report.lines["database"][0] and report.lines["gateway"][0]


def test_a_country_with_contacts_and_no_sender_id(good) -> None:
    detail = _only(_doctor({**good, "SMSGW_SENDER_IDS": "KE=SOKO"}), "sender ids")
    assert "SN" in detail and "SMSGW_SENDER_IDS" in detail and "KE" not in detail.split(":")[0]


def test_production_without_a_webhook_token(good) -> None:
    detail = _only(_doctor(_changed(good, WEBHOOK_TOKEN=None)), "webhook token")
    assert "WEBHOOK_TOKEN" in detail


def test_production_with_the_development_secret_key(good) -> None:
    detail = _only(_doctor(_changed(good, SECRET_KEY=None)), "secret key")
    assert "SECRET_KEY" in detail


def test_a_stale_heartbeat(good, deployment) -> None:
    with _session(deployment.url) as session:
        runtime_state.put(session, runtime_state.SCHEDULER, {"pid": 4242}, now=utcnow() - dt.timedelta(minutes=10))
    detail = _only(_doctor(good), "scheduler")
    assert "10 min ago" in detail and "smsgw scheduler" in detail


def _message(url: str, purpose: str, status: str, age: dt.timedelta, **fields) -> None:
    with _session(url) as session:
        session.add(
            OutboundMessage(
                idempotency_key=f"{KEY_PREFIX}{purpose}:{status}",
                to_phone="+254700000077",
                text="Maize 42 KES/kg",
                purpose=purpose,
                priority=0 if purpose == "reply" else 5,
                status=status,
                created_at=utcnow() - age,
                **fields,
            )
        )


def test_a_reply_queued_ten_minutes_ago(good, deployment) -> None:
    _message(deployment.url, "reply", "queued", dt.timedelta(minutes=10))
    detail = _only(_doctor(good), "replies")
    assert "oldest 10 min" in detail


def test_a_paused_gateway(good, deployment) -> None:
    with _session(deployment.url) as session:
        runtime_state.put(
            session, runtime_state.GATEWAY_PAUSE, {"reason": "InsufficientBalance", "since": utcnow().isoformat()}
        )
    detail = _only(_doctor(good), "sending")
    assert "paused: InsufficientBalance" in detail and "smsgw outbox drain" in detail


def test_a_bulletin_left_sending_by_a_stopped_drain(good, deployment) -> None:
    now = utcnow()
    _message(
        deployment.url, "bulletin", "sending", dt.timedelta(minutes=20),
        claimed_at=now - dt.timedelta(minutes=11), claimed_by="dead-drain", lease_until=now - dt.timedelta(minutes=10),
    )
    detail = _only(_doctor(good), "leases")
    assert "1 message left `sending`" in detail and "smsgw scheduler" in detail


def test_bad_settings_stay_the_clis_one_line_refusal(good) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "smsgw", "doctor"], check=False, capture_output=True, text=True, timeout=60,
        env={**good, "SMSGW_TIMEZONE": "Mars/Olympus"},
    )
    assert result.returncode == 2 and not result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SMSGW_TIMEZONE" in lines[0], result.stderr


def test_low_disk_under_sqlite(tmp_path, fake, monkeypatch) -> None:
    with fresh_database(tmp_path, "sqlite", seed=False) as url:
        _reset(url)
        monkeypatch.setattr(cli_doctor, "MIN_FREE_BYTES", 10**18)  # more than any disk has
        result = CliRunner().invoke(main, ["doctor"], env=_env(url, fake))
    report = _parse(result.exit_code, result.output, "")
    detail = _only(report, "disk")
    assert "free at least" in detail and "on the database's filesystem" in detail


def test_the_console_gateway_is_a_note_in_development_and_a_fault_in_production(fake) -> None:
    settings = {**config.load_settings({"DATABASE_URL": "sqlite://"}), "SMSGW_GATEWAY": "console"}
    assert cli_doctor.gateway_check(settings).ok
    assert "printed" in cli_doctor.gateway_check(settings).detail
    assert not cli_doctor.gateway_check({**settings, "SMSGW_ENV": "production"}).ok


def test_an_empty_balance_and_an_unreachable_api_fail_the_gateway(fake) -> None:
    settings = {
        **config.load_settings({"DATABASE_URL": "sqlite://"}),
        "SMSGW_GATEWAY": "africastalking",
        "AT_USERNAME": "smsgw-test",
        "AT_API_KEY": API_KEY,
        "AT_API_BASE": fake.base_url,
    }
    with FakeAfricasTalking(api_key=API_KEY, balance="KES 0.0000") as broke:
        check = cli_doctor.gateway_check({**settings, "AT_API_BASE": broke.base_url})
    assert not check.ok and "top up" in check.detail
    with FakeAfricasTalking(api_key=API_KEY) as gone:
        base = gone.base_url
    check = cli_doctor.gateway_check({**settings, "AT_API_BASE": base})
    assert not check.ok and "could not reach" in check.detail and "AT_API_BASE" in check.detail
