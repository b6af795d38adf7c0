"""The SMS keyword table: every command the parser names, and the function that answers it.

This is the one place that lists keyword handlers: ``commands`` (prices, grades, alerts,
sales, reports, language, STOP/START), ``order_commands`` (group orders),
``storage_commands`` (store or sell) and ``settlement_commands`` (delivery, settlement,
payment confirmation) only define them. ``tests/test_sms_router.py`` checks that every
command word has a handler here.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import sqlalchemy.orm as so

from smsgw.conversations.sms import commands, offer_commands, order_commands, settlement_commands, storage_commands
from smsgw.conversations.sms.commands import Reply, Request, error_text
from smsgw.conversations.sms.parser import Parsed
from smsgw.i18n import Text
from smsgw.models import Contact, InboundMessage

Handler = Callable[[Request], str | None]

HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        # Anyone
        "help": offer_commands.help_or_buyer_help,
        "unknown": offer_commands.help_or_buyer_help,
        "empty": offer_commands.help_or_buyer_help,
        "start": commands._start,
        "stop": commands._stop,
        "lang": commands._lang,
        "price": commands._price,
        "std": commands._std,
        "sub": commands._sub,
        "unsub": commands._unsub,
        "sold": commands._sold,
        "store": storage_commands._store,
        # Registered price reporters
        "report": commands._report,
        # Group orders: leaders
        "open": order_commands._open,
        "total": order_commands._total,
        "close": order_commands._close,
        "cancel": order_commands._cancel,
        "tell": order_commands._tell,
        # Buyers' offers and suppliers' quotes (bare: the lists); YES <offer or draft order>
        "offer": offer_commands._offer,
        "unoffer": offer_commands._unoffer,
        "confirm": offer_commands._confirm,
        # Group orders: members
        "join": order_commands._join,
        "withdraw": order_commands._withdraw,
        "paid": settlement_commands._paid,
        "dispute": settlement_commands._dispute,
        # After close: deliveries, settlement and payment references (leaders)
        "delivered": settlement_commands._delivered,
        "settle": settlement_commands._settle,
        "payref": settlement_commands._payref,
    }
)


def dispatch(
    db: so.Session,
    settings: Mapping[str, Any],
    message: InboundMessage,
    contact: Contact | None,
    parsed: Parsed,
) -> Reply | None:
    """Run the command; the reply to send, or None when nothing may be sent."""
    t = Text(commands._language(contact, parsed, settings))
    request = Request(db, settings, message, contact, parsed, t)
    if parsed.command == "stop":
        text = HANDLERS["stop"](request)
        return Reply(text, t.lang) if text else None
    if parsed.error and parsed.command not in ("unknown", "empty"):
        text = error_text(t, parsed.error)
    else:
        text = HANDLERS.get(parsed.command, HANDLERS["help"])(request)
    if not text:
        return None
    # After STOP a farmer's own question is still answered (STOP ends our alerts, not
    # their right to ask), with a reminder of how to turn the alerts back on.
    still_off = request.contact is not None and request.contact.opted_out
    return Reply(text, request.t.lang, request.t(commands.ALERTS_OFF) if still_off else None)
