"""Deadline reminders for members who have not committed to an open group order."""

from __future__ import annotations

import datetime as dt

import sqlalchemy.orm as so

from smsgw.conversations.texts import quantity
from smsgw.i18n import Text
from smsgw.messaging import outbox
from smsgw.services.orders import reminders_due, totals
from smsgw.services.quantities import quantity_phrase


def send_reminders(session: so.Session, now: dt.datetime) -> int:
    """Queue one reminder per (order, member) due; the key makes a repeat a no-op. Returns how many were due."""
    count = 0
    for order, member in reminders_due(session, now):
        t = Text(member.language)
        progress = totals(session, order)
        text = t(
            "Reminder: order %(id)s (%(crop)s) closes %(date)s. Group has %(total)s/%(target)s. Reply JOIN "
            "%(id)s and your quantity.",
            id=order.id,
            crop=order.commodity.short(t.lang),
            date=t.date(order.deadline.date()),
            total=quantity(t, progress.total),
            target=quantity_phrase(t, progress.target, order.unit),
        )
        outbox.enqueue(
            session,
            to=member.phone,
            text=text,
            purpose="order",
            key=f"order:{order.id}:reminder:{member.id}",
            lang=t.lang,
            contact_id=member.id,
        )
        count += 1
    return count
