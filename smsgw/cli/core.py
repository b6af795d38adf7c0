"""What every ``smsgw`` command shares: the top-level group, its error handling, settings.

Command modules import from here and never from each other; ``smsgw.cli`` adds each
module's commands to ``main`` in one list.
"""
from __future__ import annotations

from typing import Any

import click
import sqlalchemy.exc

from smsgw.config import ConfigError, load_settings
from smsgw.db import Database
from smsgw.phones import InvalidPhone


class SettingError(click.ClickException):
    """A bad setting: one line, and exit code 2 so that supervisors do not retry in a loop."""

    exit_code = 2


class Commands(click.Group):
    """A command group that turns known errors into one clear line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise SettingError(str(exc)) from None
        except InvalidPhone as exc:
            raise click.ClickException(str(exc)) from None
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(f"cannot use the database: {reason} (check DATABASE_URL)") from None


def settings() -> dict[str, Any]:
    """The validated settings (a bad one becomes ``SettingError`` through ``Commands``)."""
    return load_settings()


def database(settings: dict[str, Any]) -> Database:
    """The database the settings name."""
    return Database.from_settings(settings)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """smsgw: market prices, buyer standards and group orders by USSD and SMS."""
    import os

    from smsgw.logs import configure_logging

    # From the environment alone: a wrong setting elsewhere is for the command to report.
    # ``serve`` and ``scheduler`` are the web and scheduler processes from their first line.
    command = click.get_current_context().invoked_subcommand or ""
    configure_logging(os.environ, {"serve": "web", "scheduler": "scheduler"}.get(command, "cli"))
