"""Set up and run the service: ``init``, ``seed --demo``, ``serve``, ``scheduler``, ``demo``."""
from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from smsgw.cli import core


@click.command()
def init() -> None:
    """Create or upgrade the database schema to the latest migration."""
    from smsgw.migrate import upgrade

    settings = core.settings()
    upgrade(settings["DATABASE_URL"])
    click.echo("database is at the latest schema")


@click.command()
@click.option("--demo", is_flag=True, required=True, help="Load the demo catalog, people and 120 days of prices.")
def seed(demo: bool) -> None:
    """Load demo content from content/ (running it twice changes nothing)."""
    _seed(core.settings())


def _seed(settings: dict[str, Any]) -> None:
    from smsgw.resources import content_dir
    from smsgw.services.seeding import seed_demo

    db = core.database(settings)
    with db.session() as session:
        result = seed_demo(session, content_dir(), dt.date.today(), progress=lambda msg: click.echo(f"  seeding {msg}"))
    click.echo(f"demo content loaded ({result['prices_added']} price rows added)")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve(host: str, port: int) -> None:
    """Run the web app with Flask's development server (production: gunicorn, see Procfile)."""
    from smsgw import create_app

    create_app().run(host=host, port=port, use_reloader=False)


@click.command()
def scheduler() -> None:
    """Run the scheduler process: outbox drain and timed jobs."""
    from smsgw.scheduler import main as run_scheduler

    run_scheduler(core.settings())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def demo(host: str, port: int) -> None:
    """Migrate, seed the demo, then run and supervise the web app and the scheduler."""
    import os

    from smsgw import create_app
    from smsgw.migrate import upgrade
    from smsgw.supervisor import Supervisor

    settings = core.settings()
    upgrade(settings["DATABASE_URL"])
    _seed(settings)
    # Built here only to check the settings: a bad one is one clear line now, not a web
    # child that fails and is restarted forever.
    create_app()
    click.echo(f"smsgw demo on http://{host}:{port}  (outbound SMS print here; Ctrl-C stops)")
    python = [sys.executable, "-m", "smsgw"]
    supervisor = Supervisor(
        {
            "web": [*python, "serve", "--host", host, "--port", str(port)],
            "scheduler": [*python, "scheduler"],
        },
        # Unbuffered, so SMS printed by the scheduler show at once even when output is piped.
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    supervisor.run()
