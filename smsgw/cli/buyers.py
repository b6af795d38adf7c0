"""``smsgw buyers``: register the buyers and input suppliers whose offers groups may take."""
from __future__ import annotations

import click
import sqlalchemy as sa

from smsgw.cli import core
from smsgw.models import AuditEntry, Market
from smsgw.phones import InvalidPhone, normalize_phone
from smsgw.services.buyers import BUYER_KINDS, BuyerError, list_buyers, register_buyer


@click.group()
def buyers() -> None:
    """Buyers of produce and suppliers of inputs, with their country, currency and markets."""


@buyers.command("add")
@click.option("--name", required=True, help="The buyer's name as farmers know it.")
@click.option("--kind", type=click.Choice(BUYER_KINDS), default="trader", show_default=True)
@click.option("--phone", required=True, help="The phone that posts offers by SMS and hears when a group takes one.")
@click.option("--country", required=True, help="Two letters (KE, SN): only groups of this country may take its offers.")
@click.option("--currency", required=True, help="Three letters (KES, XOF): the currency of its offers.")
@click.option("--market", "markets", multiple=True, required=True, help="A market it serves (code); repeat for more.")
@click.option("--language", type=click.Choice(["en", "fr", "sw", "wo"]), default="en", show_default=True,
              help="The language of the SMS it gets.")
@click.argument("code")
def add(code: str, name: str, kind: str, phone: str, country: str, currency: str, markets: tuple[str, ...],
        language: str) -> None:
    """Register (or update) the buyer CODE."""
    settings = core.settings()
    try:
        e164 = normalize_phone(phone, settings["SMSGW_DEFAULT_REGION"])
    except InvalidPhone as error:
        raise click.ClickException(f"not a phone number: {phone!r} ({error})") from None
    with core.database(settings).session() as session:
        found = list(session.scalars(sa.select(Market).where(Market.code.in_([m.strip().lower() for m in markets]))))
        missing = sorted({m.strip().lower() for m in markets} - {m.code for m in found})
        if missing:
            raise click.ClickException(f"unknown market(s): {', '.join(missing)} (see the admin's catalog for codes)")
        try:
            buyer = register_buyer(session, code=code, name=name, kind=kind, phone=e164, country=country,
                                   currency=currency, markets=found, language=language)
        except BuyerError as error:
            raise click.ClickException(str(error)) from None
        session.add(AuditEntry(actor="cli", action="register", entity="buyer", entity_id=str(buyer.id),
                               after={"code": buyer.code, "kind": kind, "country": buyer.country,
                                      "currency": buyer.currency, "markets": [m.code for m in found]}))
        click.echo(f"buyer {buyer.code} ({buyer.kind}, {buyer.country}, {buyer.currency}) registered; "
                   f"its phone can now send OFFER")


@buyers.command("list")
def list_command() -> None:
    """Every buyer: code, kind, country, currency, markets."""
    with core.database(core.settings()).session(read_only=True) as session:
        rows = list_buyers(session)
        if not rows:
            click.echo("no buyers yet: smsgw buyers add --help")
        for buyer in rows:
            markets = ",".join(m.code for m in buyer.markets) or "-"
            state = "" if buyer.active else " (inactive)"
            click.echo(f"{buyer.code:<24} {buyer.kind:<11} {buyer.country or '--':<3} {buyer.currency or '---':<4} "
                       f"{markets}{state}")
