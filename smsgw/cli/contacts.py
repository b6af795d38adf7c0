"""``smsgw contacts``: people by phone number; ``forget`` answers a deletion request."""
from __future__ import annotations

import click

from smsgw.cli import core
from smsgw.phones import mask_phone, normalize_phone


@click.group()
def contacts() -> None:
    """Farmers and other contacts, by phone number."""


@contacts.command("forget")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.argument("phone")
def forget(phone: str, yes: bool) -> None:
    """Anonymise PHONE's contact and scrub their messages (sales, orders and prices stay)."""
    from smsgw.services.privacy import forget_contact

    settings = core.settings()
    e164 = normalize_phone(phone, settings["SMSGW_DEFAULT_REGION"])
    if not yes:
        click.confirm(
            f"Forget {mask_phone(e164)}: number, name, messages and alerts? This cannot be undone", abort=True
        )
    with core.database(settings).session() as session:
        result = forget_contact(session, e164, actor="cli")
    if not result.found:
        click.echo(f"nothing is stored for {mask_phone(e164)}")
        return
    done = ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in result.counts.items() if count)
    click.echo(f"{mask_phone(e164)} forgotten: now {result.placeholder} ({done or 'no messages'}); audited")
