"""``smsgw users``: operator accounts for the web admin (the first admin comes from here).

Passwords are read from a hidden prompt, or from standard input when it is not a
terminal (one line), never from the command line where ``ps`` and shell history see them.
"""
from __future__ import annotations

import sys

import click
import sqlalchemy as sa

from smsgw.cli import core
from smsgw.models import AuditEntry, OperatorUser
from smsgw.services import operator_sessions, signin_throttle
from smsgw.services.passwords import PROBLEMS, password_problem

ROLES = ("admin", "operator", "viewer")


def _read_password(email: str) -> str:
    """A new password from the prompt (asked twice) or the first line of standard input,
    refused in one line when the password policy refuses it."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problem = password_problem(password, email)
    if problem is not None:
        raise click.ClickException(PROBLEMS[problem])
    return password


def _normal_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 254:
        raise click.ClickException(f"not an email address: {email!r}")
    return email


@click.group()
def users() -> None:
    """Operator accounts of the web admin."""


@users.command("create")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    required=True,
    help="admin: everything; operator: day-to-day work; viewer: read only.",
)
@click.option(
    "--language", type=click.Choice(["en", "fr"]), default="en", show_default=True, help="Language of the admin pages."
)
@click.argument("email")
def create(role: str, language: str, email: str) -> None:
    """Create an account for EMAIL; the password is asked for (or read from stdin)."""
    from werkzeug.security import generate_password_hash

    email = _normal_email(email)
    db = core.database(core.settings())
    with db.session() as session:
        if session.scalar(sa.select(OperatorUser.id).where(OperatorUser.email == email)):
            raise click.ClickException(
                f"{email} already has an account (smsgw users set-password {email} changes its password)"
            )
    password = _read_password(email)
    with db.session() as session:
        row = OperatorUser(
            email=email, role=role, language=language, password_hash=generate_password_hash(password), active=True
        )
        session.add(row)
        session.flush()
        session.add(
            AuditEntry(
                actor="cli",
                action="create",
                entity="operator_user",
                entity_id=str(row.id),
                after={"email": email, "role": role, "language": language, "active": True},
            )
        )
    click.echo(f"{role} {email} created; sign in at /admin/signin")


@users.command("set-password")
@click.argument("email")
def set_password(email: str) -> None:
    """Set a new password for EMAIL (its open sessions end)."""
    from werkzeug.security import generate_password_hash

    email = _normal_email(email)
    db = core.database(core.settings())
    with db.session() as session:
        if not session.scalar(sa.select(OperatorUser.id).where(OperatorUser.email == email)):
            raise click.ClickException(f"no account for {email} (smsgw users create --role ROLE {email})")
    password = _read_password(email)
    with db.session() as session:
        row = session.scalars(sa.select(OperatorUser).where(OperatorUser.email == email)).one()
        row.password_hash = generate_password_hash(password)
        ended = operator_sessions.end_all(session, row.id, "password")
        session.add(AuditEntry(actor="cli", action="update", entity="operator_user", entity_id=str(row.id),
                               after={"password": "changed", "sessions_ended": ended}))
    click.echo(f"password of {email} changed; {ended} open session(s) ended")


@users.command("sign-out")
@click.argument("email")
def sign_out(email: str) -> None:
    """End every open session of EMAIL (a lost laptop, a stolen cookie)."""
    email = _normal_email(email)
    db = core.database(core.settings())
    with db.session() as session:
        row = session.scalar(sa.select(OperatorUser).where(OperatorUser.email == email))
        if row is None:
            raise click.ClickException(f"no account for {email} (smsgw users list shows them)")
        ended = operator_sessions.end_all(session, row.id, "everywhere")
        session.add(AuditEntry(actor="cli", action="signout_everywhere", entity="operator_user", entity_id=str(row.id),
                               after={"sessions_ended": ended}))
    click.echo(f"{ended} open session(s) of {email} ended")


@users.command("clear-throttles")
def clear_throttles() -> None:
    """Forget every failed sign-in count (an admin locked out by someone's guessing)."""
    db = core.database(core.settings())
    with db.session() as session:
        cleared = signin_throttle.clear(session)
        session.add(AuditEntry(actor="cli", action="clear", entity="signin_throttle", after={"cleared": cleared}))
    click.echo(f"{cleared} sign-in throttle(s) cleared")


@users.command("list")
def list_users() -> None:
    """Print every account: email, role, whether active, last sign-in."""
    db = core.database(core.settings())
    with db.session() as session:
        rows = session.scalars(sa.select(OperatorUser).order_by(OperatorUser.email)).all()
        if not rows:
            click.echo("no accounts yet: smsgw users create --role admin EMAIL")
        for row in rows:
            last = row.last_login_at.isoformat(timespec="minutes") if row.last_login_at else "never"
            click.echo(f"{row.email:<40} {row.role:<9} {'active' if row.active else 'inactive':<9} last sign-in {last}")
