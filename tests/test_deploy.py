"""The README's Deploy section, followed by hand on a fresh PostgreSQL database.

The systemd units' own command lines (deploy/systemd/*.service) run with the settings of
deploy/env.example, as systemd would start them: `smsgw init` before the web process,
gunicorn with the Procfile's configuration, the scheduler. Then `/healthz` turns green,
`smsgw doctor` passes, and the README's curl (with the webhook token) gets a USSD menu.
"""
from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from smsgw.config import PROJECT_ROOT
from tests.fake_at import FakeAfricasTalking
from tests.support.databases import fresh_database
from tests.support.ports import free_port

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
]
DEPLOY = PROJECT_ROOT / "deploy"
INSTALLED_BIN = "/opt/smsgw/bin/"
UNIT_PORT = "127.0.0.1:8000"


def _service(unit: str) -> dict[str, str]:
    """The [Service] keys of a unit file."""
    keys: dict[str, str] = {}
    section = ""
    for line in (DEPLOY / "systemd" / unit).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys[key] = value
    return keys


def _command(line: str, port: int) -> list[str]:
    """A unit's command with this virtualenv's scripts and a free port."""
    bin_dir = str(Path(sys.executable).parent) + "/"
    return [word.replace(INSTALLED_BIN, bin_dir).replace(UNIT_PORT, f"127.0.0.1:{port}") for word in shlex.split(line)]


def _env_file(**overrides: str) -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    values.update(overrides)
    return values


def _readme_curl() -> str:
    """The Deploy section's first curl, the one that checks the service by hand."""
    text = (PROJECT_ROOT / "README.md").read_text()
    deploy = text[text.index("## Deploy"):]
    lines = (line.strip() for line in deploy.splitlines())
    return next(line for line in lines if line.startswith("curl ") and "/at/ussd?token=" in line)


def test_the_deploy_section_gives_a_working_service(tmp_path) -> None:
    web_unit, scheduler_unit = _service("smsgw-web.service"), _service("smsgw-scheduler.service")
    assert web_unit["EnvironmentFile"] == scheduler_unit["EnvironmentFile"] == "/etc/smsgw/env"
    with fresh_database(tmp_path, "postgresql", seed=False) as url, FakeAfricasTalking(api_key="live-key") as fake:
        plain_url = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        token = secrets.token_urlsafe(24)
        settings = _env_file(
            DATABASE_URL=plain_url, SECRET_KEY=secrets.token_urlsafe(32), WEBHOOK_TOKEN=token,
            AT_USERNAME="smsgw-live", AT_API_KEY="live-key", AT_API_BASE=fake.base_url,
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGW_", "AT_", "SMS_", "TEST_DATABASE"))}
        env = {**base, **settings}
        port = free_port()
        workdir = tmp_path / "var-lib-smsgw"
        workdir.mkdir()
        init = subprocess.run(
            _command(web_unit["ExecStartPre"], port),
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert init.returncode == 0, init.stderr
        logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("web", "scheduler")}
        processes = {
            "web": subprocess.Popen(
                _command(web_unit["ExecStart"], port),
                env=env,
                cwd=workdir,
                stdout=logs["web"],
                stderr=subprocess.STDOUT,
            ),
            "scheduler": subprocess.Popen(
                _command(scheduler_unit["ExecStart"], port),
                env=env,
                cwd=workdir,
                stdout=logs["scheduler"],
                stderr=subprocess.STDOUT,
            ),
        }
        try:
            deadline = time.monotonic() + 90
            while True:
                assert all(p.poll() is None for p in processes.values()), _logs(tmp_path)
                try:
                    health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                    if health.status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, _logs(tmp_path)
                time.sleep(0.5)
            curl = _readme_curl().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            answer = subprocess.run(
                ["bash", "-c", curl],
                env={**env, "WEBHOOK_TOKEN": token},
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert answer.stdout.startswith("CON "), (answer.stdout, _logs(tmp_path))
            doctor = subprocess.run(
                [sys.executable, "-m", "smsgw", "doctor"],
                env=env,
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert doctor.returncode == 0, doctor.stdout + doctor.stderr
            # Without the token, Africa's Talking's URL is refused.
            assert (
                requests.post(f"http://127.0.0.1:{port}/at/ussd", data={"sessionId": "x"}, timeout=5).status_code == 403
            )
        finally:
            for process in processes.values():
                process.send_signal(signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for handle in logs.values():
                handle.close()
    # Nothing personal or secret in what the processes logged.
    output = _logs(tmp_path)
    assert token not in output and not re.search(r"\+2547\d{8}", output), output


def _logs(tmp_path: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in sorted(tmp_path.glob("*.log")))
