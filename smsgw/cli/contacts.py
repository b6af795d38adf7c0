"""``smsgw contacts``: people by phone number; ``forget`` answers a deletion request."""
from __future__ import annotations

import datetime as dt

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


@contacts.command("enrol")
@click.option("--on", "day", type=click.DateTime(["%Y-%m-%d"]), help="The day enrolled (default: today).")
@click.argument("phone")
def enrol(phone: str, day: dt.datetime | None) -> None:
    """Record that an operator enrolled PHONE (from --on); an earlier enrolment on record stays."""
    from zoneinfo import ZoneInfo

    import sqlalchemy as sa

    from smsgw.db import utcnow
    from smsgw.models import AuditEntry, Contact
    from smsgw.phones import InvalidPhone
    from smsgw.services.enrolment import enrol as record

    settings = core.settings()
    try:
        e164 = normalize_phone(phone, settings["SMSGW_DEFAULT_REGION"])
    except InvalidPhone as error:
        raise click.ClickException(f"not a phone number: {phone!r} ({error})") from None
    zone = ZoneInfo(settings["SMSGW_TIMEZONE"])
    if day is not None and day.date() > utcnow().astimezone(zone).date():
        raise click.ClickException(f"--on {day:%Y-%m-%d} is in the future: enrol on the day it happens")
    when = dt.datetime.combine(day.date(), dt.time(0), zone).astimezone(dt.UTC) if day else None
    with core.database(settings).session() as session:
        contact = session.scalar(sa.select(Contact).where(Contact.phone == e164))
        if contact is None:
            raise click.ClickException(f"no contact {mask_phone(e164)}: they register by USSD or SMS first")
        before = contact.enrolled_at.isoformat() if contact.enrolled_at else None
        if not record(session, contact, "operator", when):
            click.echo(f"{mask_phone(e164)} was enrolled earlier: {before} ({contact.enrolment_source})")
            return
        enrolled = contact.enrolled_at or utcnow()  # record() has just set it
        session.add(AuditEntry(actor="cli", action="enrol", entity="contact", entity_id=str(contact.id),
                               before={"enrolled_at": before},
                               after={"enrolled_at": enrolled.isoformat(), "source": "operator"}))
    click.echo(f"{mask_phone(e164)} enrolled from {enrolled.astimezone(zone):%Y-%m-%d} (operator)")
