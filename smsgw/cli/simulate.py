"""``smsgw simulate ussd|sms``: play a phone against the same code as the webhooks."""
from __future__ import annotations

import uuid

import click

from smsgw.cli import core
from smsgw.config import LANGUAGES
from smsgw.phones import normalize_phone


@click.group()
def simulate() -> None:
    """Play USSD or SMS as a phone would, against the same code as the webhooks."""


@simulate.command("ussd")
@click.option("--phone", required=True, help="The caller's number, e.g. +254700000001.")
@click.option("--lang", type=click.Choice(LANGUAGES), help="Show screens in this language.")
@click.option("--interactive", is_flag=True, help="Play a whole session at the prompt.")
@click.argument("path", default="")
def simulate_ussd(phone: str, lang: str | None, interactive: bool, path: str) -> None:
    """Print the USSD screen reached by PATH (inputs joined by *, e.g. "1*2")."""
    from smsgw.conversations.ussd.session import handle_hop

    settings = core.settings()
    phone = normalize_phone(phone, settings["SMSGW_DEFAULT_REGION"])
    db = core.database(settings)
    session_id = f"sim-{uuid.uuid4().hex[:12]}"

    def hop(text: str) -> str:
        with db.session() as session:
            return handle_hop(session, settings, session_id=session_id, phone=phone, text=text, lang=lang)

    body = hop(path)
    click.echo(body)
    inputs = [path] if path else []
    while interactive and body.startswith("CON "):
        inputs.append(click.prompt(">", prompt_suffix=" "))
        body = hop("*".join(inputs))
        click.echo(body)


@simulate.command("sms")
@click.option("--phone", required=True, help="The sender's number, e.g. +254700000001.")
@click.argument("text")
def simulate_sms(phone: str, text: str) -> None:
    """Send TEXT as an inbound SMS and print its reply (nothing else in the outbox is sent)."""
    from smsgw.conversations.sms.intake import receive
    from smsgw.messaging.drain import drain_once
    from smsgw.messaging.gateways.console import ConsoleGateway

    settings = core.settings()
    phone = normalize_phone(phone, settings["SMSGW_DEFAULT_REGION"])
    db = core.database(settings)
    with db.session() as session:
        message = receive(session, settings, {"from": phone, "text": text, "id": f"sim-{uuid.uuid4().hex}"})
        inbound_id = message.id if message is not None else None
        error = message.error if message is not None and message.status == "error" else None
    if inbound_id is None:
        return
    if error:
        click.echo(f"the message could not be handled: {error}", err=True)
    # Only what this SMS caused: other people's queued messages are the real drain's, and
    # the console would mark them sent although they never reach a phone.
    keys = [f"reply:{inbound_id}", f"apology:{inbound_id}"]
    gateway = ConsoleGateway()
    while drain_once(db, gateway, keys=keys).claimed:
        pass
