"""The ``smsgw`` command line: help everywhere, clear one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from smsgw.cli import main


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", list(_commands(main)))
def test_every_command_has_help(path) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) >= 3


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smsgw", *args],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["init"], {"DATABASE_URL": "not a url"}, "DATABASE_URL is not a database URL"),
        (
            ["init"],
            {"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
            "cannot use the database",
        ),
        (["simulate", "ussd", "--phone", "12"], {}, "not a valid phone number"),
        (
            ["serve"],
            {"SMSGW_ENV": "production", "SECRET_KEY": "", "WEBHOOK_TOKEN": ""},
            "refusing to start",
        ),
    ],
)
def test_errors_are_one_clear_line(args, env, message, database_url) -> None:
    env = {"DATABASE_URL": database_url, **env}
    result = _run(args, **env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_simulate_ussd_prints_the_screen(database_url) -> None:
    result = _run(["simulate", "ussd", "--phone", "+254700000001", "1"], DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CON ") and "Maize" in result.stdout


def test_bulletin_dry_run_prints_counts_and_cost_and_queues_nothing(database_url) -> None:
    result = _run(["bulletins", "send", "daily", "--dry-run"], DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert "nakuru" in result.stdout and "segments" in result.stdout and "KES" in result.stdout
    assert "dry run: nothing queued" in result.stdout
