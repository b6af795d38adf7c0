"""Every bad setting stops each kind of process before it starts, in one line, exit code 2.

The real commands run in subprocesses, as an operator (or systemd) would start them,
with one wrong variable each; the line names the variable and says what to write.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import fresh_database

BAD_SETTINGS = [
    ("SMSGW_TIMEZONE", "Africa/Nairobbi", "IANA name"),
    ("SMS_REPLIES_PER_HOUR", "ten", "whole number"),
    ("SMS_UNKNOWN_DAILY_CAP", "-3", "at least 0"),
    ("BULLETIN_QUIET_START", "25", "between 0 and 23"),
    ("BULLETIN_BATCH_PAUSE", "soon", "must be a number"),
    ("PRICE_ANOMALY_Z", "0", "above zero"),
    ("SMSGW_ALLOWED_PREFIXES", "254,+221", "+254,+221"),
    ("AT_SENDER_ID", "FARMERS-MARKET-INFO", "sender id"),
    ("SMSGW_SENDER_IDS", "KE:SOKO", "COUNTRY=SENDER"),
    ("SMS_SEGMENT_COST", "KES 0.80", "CUR:amount"),
    ("SMS_DAILY_COST_ALERT", "KES:-5", "CUR:amount"),
    ("SMS_SHORTCODE_KEYWORDS", "SOKO,TWO WORDS", "single words"),
    ("SMSGW_DEFAULT_REGION", "XX", "country code"),
    ("SMSGW_DEFAULT_LANG", "de", "SMSGW_DEFAULT_LANG must be one of"),
    ("SMSGW_GATEWAY", "twilio", "SMSGW_GATEWAY must be one of"),
    ("SMSGW_ENV", "prod", "development, production"),
    ("OUTBOX_LEASE_SECONDS", "0", "above zero"),
    ("DATABASE_STATEMENT_TIMEOUT", "x", "whole number"),
    ("DATABASE_URL", "mysql://root@localhost/smsgw", "does not run on"),
    ("DATABASE_URL", "postgresql+psycopg2://u@localhost/smsgw", "driver 'psycopg2'"),
    ("DATABASE_URL", "not a url", "not a database URL"),
]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smsgw", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _gunicorn(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """gunicorn started as the Procfile starts it."""
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    return subprocess.run(
        [gunicorn, *GUNICORN], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SMSGW_", "AT_", "SMS_"))}
    env.pop("TEST_DATABASE_URL", None)
    env.update({"DATABASE_URL": url, "SMSGW_INSTANCE_DIR": str(tmp_path / "instance"), **extra})
    return env


def _assert_one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    assert "Traceback" not in output and len(output.splitlines()) == 1, output
    for fragment in fragments:
        assert fragment in output, output


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> str:
    """One migrated SQLite database for the table (the commands stop before using it)."""
    tmp = tmp_path_factory.mktemp("settings")
    with fresh_database(tmp, "sqlite", seed=False) as url:
        yield url


@pytest.mark.parametrize(("key", "value", "advice"), BAD_SETTINGS, ids=[f"{k}={v}" for k, v, _ in BAD_SETTINGS])
def test_a_bad_setting_stops_serve_in_one_line(tmp_path, migrated, key, value, advice) -> None:
    result = _run(["serve", "--port", "1"], _env(tmp_path, migrated, **{key: value}), tmp_path)
    _assert_one_line(result, key, advice)


@pytest.mark.parametrize("command", [["scheduler"], ["demo", "--port", "1"], ["outbox", "drain"]])
@pytest.mark.parametrize(("key", "value", "advice"), [BAD_SETTINGS[0], BAD_SETTINGS[6], BAD_SETTINGS[18]])
def test_every_process_refuses_a_bad_setting(tmp_path, migrated, command, key, value, advice) -> None:
    result = _run(command, _env(tmp_path, migrated, **{key: value}), tmp_path)
    _assert_one_line(result, key, advice)


GUNICORN = ["-c", "python:smsgw.gunicorn_conf", "--bind", "127.0.0.1:0", "smsgw:create_app()"]


@pytest.mark.parametrize(("key", "value", "advice"), [BAD_SETTINGS[0], BAD_SETTINGS[8], BAD_SETTINGS[19]])
def test_gunicorn_refuses_a_bad_setting_before_it_forks(tmp_path, migrated, key, value, advice) -> None:
    result = _gunicorn(_env(tmp_path, migrated, **{key: value}), tmp_path)
    _assert_one_line(result, key, advice)


def test_gunicorn_refuses_a_database_that_is_not_migrated(tmp_path) -> None:
    result = _gunicorn(_env(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}"), tmp_path)
    _assert_one_line(result, "run `smsgw init`")


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["scheduler"]])
def test_a_database_that_is_not_migrated_says_run_init(tmp_path, command) -> None:
    result = _run(command, _env(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}"), tmp_path)
    _assert_one_line(result, "run `smsgw init`")


def test_an_older_schema_says_run_init(tmp_path) -> None:
    from smsgw.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "88e10bc11819")
    result = _run(["scheduler"], _env(tmp_path, url), tmp_path)
    _assert_one_line(result, "88e10bc11819", "run `smsgw init`")


@pytest.mark.parametrize("missing", ["SECRET_KEY", "WEBHOOK_TOKEN"])
def test_production_without_secrets_refuses_to_start(tmp_path, migrated, missing) -> None:
    secrets = {"SECRET_KEY": "s" * 32, "WEBHOOK_TOKEN": "t" * 24}
    secrets.pop(missing)
    result = _run(["serve", "--port", "1"], _env(tmp_path, migrated, SMSGW_ENV="production", **secrets), tmp_path)
    _assert_one_line(result, missing)


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_platform_style_postgres_urls_use_psycopg(scheme) -> None:
    from smsgw.config import load_settings

    settings = load_settings({"DATABASE_URL": f"{scheme}://u:p@db.example:5432/smsgw"})
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u:p@db.example:5432/smsgw"
