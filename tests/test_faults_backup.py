"""The backup routine of the README ("Backups"), run as written: a custom-format
pg_dump, restored with pg_restore into a scratch database, checked with ``smsgw init``.
The restored copy has every row, and migrates (it is at the latest schema already).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from smsgw import create_app
from smsgw.db import Base, Database
from smsgw.messaging.outbox import enqueue
from tests.support.databases import fresh_database

pytestmark = [
    pytest.mark.postgres,
]


def _libpq(url: str) -> str:
    """The URL the PostgreSQL tools take (no SQLAlchemy driver name)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            counts = {
                t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in Base.metadata.sorted_tables
            }
            counts["alembic_version"] = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        return counts
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_nightly_dump_restores_and_migrates(tmp_path) -> None:
    # A PostgreSQL pass without the client tools is a broken set-up, not a reason to skip.
    assert shutil.which("pg_dump") and shutil.which("pg_restore"), (
        "pg_dump and pg_restore are needed (postgresql-client)"
    )
    with fresh_database(tmp_path, "postgresql") as url:
        db = Database(url)
        with db.session() as session:
            enqueue(session, to="+254700000001", text="queued at backup time", purpose="reply", key="backup:1")
        db.dispose()
        dump = tmp_path / "smsgw-nightly.dump"
        subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", _libpq(url)], check=True, timeout=120)
        scratch = sa.make_url(url).set(database=f"smsgw_restore_{uuid.uuid4().hex[:8]}")
        admin = sa.create_engine(scratch.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {scratch.database}")
            restore_url = scratch.render_as_string(hide_password=False)
            subprocess.run(
                ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq(restore_url)}", str(dump)],
                check=True,
                timeout=120,
            )
            env = {**os.environ, "DATABASE_URL": restore_url, "SMSGW_GATEWAY": "console"}
            init = subprocess.run(
                [sys.executable, "-m", "smsgw", "init"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert init.returncode == 0 and "latest schema" in init.stdout, init.stderr
            original, restored = _counts(url), _counts(restore_url)
            assert restored == original and original["contact"] > 0 and original["outbound_message"] == 1
            # The restored copy serves: a farmer's USSD hop gets the menu.
            app = create_app({"DATABASE_URL": restore_url, "WEBHOOK_TOKEN": ""})
            try:
                hop = app.test_client().post("/at/ussd", data={
                    "sessionId": "restored-1", "phoneNumber": "+254700000001", "serviceCode": "*384#",
                    "networkCode": "63902", "text": "",
                })
            finally:
                app.extensions["smsgw.db"].dispose()
            assert hop.status_code == 200 and hop.text.startswith("CON "), hop.text
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {scratch.database} WITH (FORCE)")
            admin.dispose()
