"""The outbox drain: claim due messages, send identical texts together, record results."""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import Database
from smsgw.messaging.gateways import Gateway
from smsgw.messaging.outbox import NOT_YET_SENT, SendResult, claim_due, record_result
from smsgw.models import Contact, OutboundMessage

log = logging.getLogger(__name__)


@dataclass
class DrainStats:
    """What one drain pass did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)


def drain_once(
    db: Database, gateway: Gateway, batch_size: int = 500, chunk: int = 500, keys: Collection[str] | None = None
) -> DrainStats:
    """Send one batch of due messages; replies come first because the claim orders them.

    ``keys``: send only these messages (see ``claim_due``).
    """
    stats = DrainStats()
    with db.session() as session:
        batch = claim_due(session, batch_size, keys=keys)
        if not batch:
            return stats
        batch = _whole_requests(session, batch, batch_size, chunk)
        stats.claimed = len(batch)
        for message in batch:
            message.last_error = NOT_YET_SENT
        session.commit()
        withdrawn = _withdrawn(session, batch)
        groups: dict[tuple[str, str | None], list[OutboundMessage]] = defaultdict(list)
        for message in batch:
            if message.contact_id in withdrawn and message.purpose != "reply":
                # Queued before the person sent STOP: the opt-out wins at send time.
                record_result(message, SendResult(message.to_phone, "failed", error="opted out"))
                stats.failed += 1
                continue
            groups[(message.text, message.sender_id)].append(message)
        session.commit()
        for (text, sender_id), messages in groups.items():
            for part in _chunks(messages, chunk):
                # Committed before the call: if this process dies now, only these rows
                # may have gone out (see outbox.recover_stale).
                for message in part:
                    message.last_error = ""
                session.commit()
                _send_chunk(gateway, text, sender_id, part, stats)
                # Record each request's outcome at once: a crash later in the batch must
                # not leave these rows looking unsent.
                session.commit()
    return stats


def _whole_requests(session: so.Session, batch: list[OutboundMessage], batch_size: int, chunk: int) -> list[OutboundMessage]:
    """Give back, before the claim commits, the recipients of a text cut off by a full batch.

    The claim puts identical texts side by side, so a full batch usually ends inside the
    last text's recipients; sending that piece now would cost one request more than
    sending it with the rest, which the next claim takes first.
    """
    if len(batch) < batch_size:
        return batch
    last = (batch[-1].text, batch[-1].sender_id)
    same = [message for message in batch if (message.text, message.sender_id) == last]
    spare = len(same) % chunk
    if spare == 0 or spare >= len(batch):
        return batch
    given_back = {message.id for message in same[-spare:]}
    session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.id.in_(given_back))
        .values(status="queued", claimed_at=None, attempts=OutboundMessage.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    for message in same[-spare:]:
        session.expunge(message)
    return [message for message in batch if message.id not in given_back]


def _withdrawn(session: so.Session, batch: list[OutboundMessage]) -> set[int]:
    """Ids of the batch's contacts who have opted out."""
    ids = {message.contact_id for message in batch if message.contact_id}
    if not ids:
        return set()
    return set(session.scalars(sa.select(Contact.id).where(Contact.id.in_(ids), Contact.consent == "withdrawn")).all())


def _chunks(messages: list[OutboundMessage], size: int) -> list[list[OutboundMessage]]:
    """Split into requests of at most ``size`` recipients, each phone once per request."""
    chunks: list[tuple[set[str], list[OutboundMessage]]] = []
    for message in messages:
        for phones, part in chunks:
            if len(part) < size and message.to_phone not in phones:
                break
        else:
            phones, part = set(), []
            chunks.append((phones, part))
        phones.add(message.to_phone)
        part.append(message)
    return [part for _, part in chunks]


def _send_chunk(
    gateway: Gateway, text: str, sender_id: str | None, messages: list[OutboundMessage], stats: DrainStats
) -> None:
    by_phone = {message.to_phone: message for message in messages}
    stats.requests += 1
    try:
        results = gateway.send(text, list(by_phone), sender_id)
    except Exception as exc:  # the gateway's own errors are transient by default
        log.warning("gateway %s raised %s", gateway.name, type(exc).__name__)
        stats.errors.append(type(exc).__name__)
        results = [SendResult(phone, "retry", error=f"{type(exc).__name__}: {exc}"[:200]) for phone in by_phone]
    answered = {result.phone: result for result in results if result.phone in by_phone}
    for phone, message in by_phone.items():
        result = answered.get(phone) or SendResult(phone, "retry", error="no answer for recipient")
        record_result(message, result)
        _count(stats, message)


def _count(stats: DrainStats, message: OutboundMessage) -> None:
    if message.status == "sent":
        stats.sent += 1
    elif message.status == "queued":
        stats.retried += 1
    else:
        stats.failed += 1
