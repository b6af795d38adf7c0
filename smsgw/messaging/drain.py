"""The outbox drain: claim due messages, send identical texts together, record results.

Several drains may run side by side (the scheduler's and ``smsgw outbox drain``
processes): each claims disjoint rows under its own name and a lease it renews while it
works, so a slow gateway never makes another drain take its rows.

Rows are written by set, never one by one: one statement claims a batch, and each
request costs one statement for its rows' mark and one for the previous request's answers.

When the gateway refuses every message (a bad API key, no credit, a sender id it
rejects), the drain stops sending instead of failing the queue: the messages go back to
``queued`` with no attempt spent, a pause is recorded for every drain (and for
``/healthz`` and the dashboard) with the reason, and a drain tries again later with
backoff; the first request that goes through lifts the pause.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql

from smsgw.db import Database, error_line, utcnow
from smsgw.messaging.gateways import Gateway
from smsgw.messaging.outbox import (
    LEASE,
    TABLE,
    Claimed,
    SendResult,
    claim_for_sending,
    drain_identity,
    recover_stale,
    release,
    renew_lease,
    settle,
)
from smsgw.models import Contact, OutboundMessage
from smsgw.services import runtime_state

log = logging.getLogger(__name__)
# A paused gateway is tried again after this, doubling up to the cap while it refuses.
PAUSE_FIRST_RETRY = dt.timedelta(seconds=30)
PAUSE_MAX_RETRY = dt.timedelta(minutes=10)


@dataclass
class DrainStats:
    """What one drain pass did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    # Rows another drain took over while this one stalled past its lease (not sent here).
    lost: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    # Why the gateway is paused (empty when it is not): nothing more is sent until then.
    paused: str = ""


def drain_once(
    db: Database,
    gateway: Gateway,
    batch_size: int = 500,
    chunk: int = 500,
    keys: Collection[str] | None = None,
    lease: dt.timedelta = LEASE,
    probe: bool = False,
) -> DrainStats:
    """Send one batch of due messages; replies come first because the claim orders them.

    ``keys``: send only these messages (see ``claim_due``). ``lease``: how long this
    drain's claim holds without renewal. ``probe``: try a paused gateway now rather than
    at its next retry time (an operator's command, a restarted scheduler).

    The rows are written by set, never one by one: the claim (which marks them
    ``NOT_YET_SENT``), then one transaction per request that records the previous
    request's results and clears the mark of this request's rows, committed before the
    gateway call, so a crash leaves the rows of at most one request in doubt.
    """
    stats = DrainStats()
    owner = drain_identity()
    with db.session() as session:
        pause = paused_gateway(session)
        if pause is not None and not probe and utcnow() < _retry_at(pause):
            stats.paused = pause.get("reason", "")
            return stats
        claimed: list[Claimed] = list(claim_for_sending(session, batch_size, keys=keys, owner=owner, lease=lease))
        if not claimed:
            return stats
        batch = _whole_requests(session, claimed, batch_size, chunk)
        stats.claimed = len(batch)
        withdrawn = _withdrawn(session, batch)
        # Queued before the person sent STOP: the opt-out wins at send time.
        answered: list[tuple[Claimed, SendResult]] = [
            (message, SendResult(message.to_phone, "failed", error="opted out"))
            for message in batch
            if message.contact_id in withdrawn and message.purpose != "reply"
        ]
        groups: dict[tuple[str, str | None], list[Claimed]] = defaultdict(list)
        for message in batch:
            if message.contact_id not in withdrawn or message.purpose == "reply":
                groups[(message.text, message.sender_id)].append(message)
        done: set[int] = set()
        renewed = time.monotonic()
        for (text, sender_id), messages in groups.items():
            for part in _chunks(messages, chunk):
                if time.monotonic() - renewed > lease.total_seconds() / 3:
                    renew_lease(session, owner, lease)
                    renewed = time.monotonic()
                _record(session, answered, stats, done, owner)
                answered = []
                # Committed before the call: if this process dies now, only these rows
                # may have gone out (see outbox.recover_stale).
                mine = hand_over(session, part, owner, lease)
                session.commit()
                if len(mine) < len(part):
                    _lost(part, mine, stats, done)
                if not mine:
                    continue
                answered, refusal = _send_chunk(gateway, text, sender_id, mine, stats)
                if refusal:
                    _record(session, answered, stats, done, owner)
                    unsent = [message for message in batch if message.id not in done]
                    _pause(session, unsent, owner, refusal, pause, stats)
                    return stats
        _record(session, answered, stats, done, owner)
        session.commit()
        if pause is not None and stats.requests:
            runtime_state.clear(session, runtime_state.GATEWAY_PAUSE)
            log.warning("gateway %s accepts messages again: sending resumed", gateway.name)
    return stats


def drain_forever(
    db: Database,
    gateway: Gateway,
    lease: dt.timedelta = LEASE,
    interval: float = 2.0,
    stop: threading.Event | None = None,
) -> None:
    """Drain until ``stop`` is set: an extra drain beside the scheduler's (``smsgw outbox
    drain --follow``). A database or gateway error is one log line and a backoff, never
    the end of the process; rows of a drain that stopped are recovered once their lease
    has run out, whichever drain sees them first.
    """
    stop = stop or threading.Event()
    failures, probe = 0, True
    while not stop.is_set():
        try:
            with db.session() as session:
                recover_stale(session)
            while not stop.is_set() and drain_once(db, gateway, lease=lease, probe=probe).claimed:
                probe = False
        except Exception as exc:  # noqa: BLE001  (whatever fails, the drain lives on and says so)
            failures += 1
            wait = min(15.0, 2.0 ** failures)
            log.warning("drain failed (%s); trying again in %.0f s", error_line(exc), wait)
            stop.wait(wait)
            continue
        if failures:
            log.warning("drain works again after %d failures", failures)
            failures = 0
        stop.wait(interval)


def paused_gateway(session: so.Session) -> dict[str, Any] | None:
    """The recorded gateway pause (reason, since, retry_at), or None when sending is on."""
    row = runtime_state.get(session, runtime_state.GATEWAY_PAUSE)
    return dict(row.value) if row is not None else None


def _retry_at(pause: dict[str, Any]) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(pause["retry_at"])
    except (KeyError, TypeError, ValueError):
        return utcnow()


def hand_over(session: so.Session, part: list[Claimed], owner: str, lease: dt.timedelta) -> list[Claimed]:
    """Clear the ``NOT_YET_SENT`` mark of the rows of ``part`` that ``owner`` still holds,
    and renew their lease; the ones to send (the caller commits before sending).

    A drain that stalled past its lease (a paused process, a hung connection) may have
    had its rows recovered and sent by another drain: one statement checks and takes
    them back, so each row is handed to the gateway by one drain only, and the renewed
    lease keeps recovery off them for the length of the call.
    """
    ids = set(session.scalars(
        sa.update(OutboundMessage)
        .where(
            _among(session, OutboundMessage.id, [message.id for message in part]),
            OutboundMessage.status == "sending",
            OutboundMessage.claimed_by == owner,
        )
        .values(last_error="", lease_until=utcnow() + lease)
        .returning(OutboundMessage.id)
        .execution_options(synchronize_session=False)
    ).all())
    return [message for message in part if message.id in ids]


def _lost(part: list[Claimed], mine: list[Claimed], stats: DrainStats, done: set[int]) -> None:
    """Leave alone the rows another drain took over while this one stalled, and say so."""
    kept = {message.id for message in mine}
    lost = [message.id for message in part if message.id not in kept]
    done.update(lost)
    stats.lost += len(lost)
    log.warning(
        "this drain stalled past its lease: %d messages were taken over by another drain and are left to it",
        len(lost),
    )


def _pause(
    session: so.Session,
    unsent: list[Claimed],
    owner: str,
    reason: str,
    previous: dict[str, Any] | None,
    stats: DrainStats,
) -> None:
    """Give the batch's unsent rows back and record (or extend) the gateway pause."""
    release(session, unsent, owner)
    now = utcnow()
    previous_wait = dt.timedelta(seconds=2 * float(previous.get("wait_seconds", 0))) if previous else PAUSE_FIRST_RETRY
    wait = min(PAUSE_MAX_RETRY, max(PAUSE_FIRST_RETRY, previous_wait))
    since = previous.get("since") if previous else None
    runtime_state.put(session, runtime_state.GATEWAY_PAUSE, {
        "reason": reason, "since": since or now.isoformat(), "retry_at": (now + wait).isoformat(),
        "wait_seconds": wait.total_seconds(),
    })
    session.commit()
    stats.paused = reason
    log.error(
        "gateway refuses every message (%s): sending paused, %d messages stay queued; "
        "fix the setting (the drain tries again in %d s, or run `smsgw outbox drain`)",
        reason, len(unsent), wait.total_seconds(),
    )


def _whole_requests(
    session: so.Session, batch: list[Claimed], batch_size: int, chunk: int
) -> list[Claimed]:
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
        .where(_among(session, OutboundMessage.id, given_back))
        .values(
            status="queued", claimed_at=None, claimed_by=None, lease_until=None, attempts=OutboundMessage.attempts - 1,
            last_error="",
        )
        .execution_options(synchronize_session=False)
    )
    for message in same[-spare:]:
        if isinstance(message, OutboundMessage):
            session.expunge(message)
    return [message for message in batch if message.id not in given_back]


def _withdrawn(session: so.Session, batch: list[Claimed]) -> set[int]:
    """Ids of the batch's contacts who have opted out."""
    ids = {message.contact_id for message in batch if message.contact_id}
    if not ids:
        return set()
    return set(session.scalars(
        sa.select(Contact.id).where(_among(session, Contact.id, ids), Contact.consent == "withdrawn")
    ).all())


def _among(session: so.Session, column: so.InstrumentedAttribute[int], ids: Collection[int]) -> sa.ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``: one parameter, so one statement
    text whatever the number of ids, which the driver prepares once."""
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam("among_ids", list(ids), type_=postgresql.ARRAY(sa.Integer)))
    return column.in_(ids)


def _chunks(messages: list[Claimed], size: int) -> list[list[Claimed]]:
    """Split into requests of at most ``size`` recipients, each phone once per request."""
    chunks: list[tuple[set[str], list[Claimed]]] = []
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
    gateway: Gateway, text: str, sender_id: str | None, messages: list[Claimed], stats: DrainStats
) -> tuple[list[tuple[Claimed, SendResult]], str]:
    """Send one request: each recipient's answer to record, and the refusal's reason if
    the gateway refused every message (those rows get no answer: the caller releases them)."""
    by_phone = {message.to_phone: message for message in messages}
    stats.requests += 1
    try:
        results = gateway.send(text, list(by_phone), sender_id)
    except Exception as exc:  # noqa: BLE001  (the gateway's own errors are transient by default)
        log.warning("gateway %s raised %s", gateway.name, type(exc).__name__)
        stats.errors.append(type(exc).__name__)
        results = [SendResult(phone, "retry", error=f"{type(exc).__name__}: {exc}"[:200]) for phone in by_phone]
    answered = {result.phone: result for result in results if result.phone in by_phone}
    refusal = ""
    found: list[tuple[Claimed, SendResult]] = []
    for phone, message in by_phone.items():
        result = answered.get(phone) or SendResult(phone, "retry", error="no answer for recipient")
        if result.outcome == "pause":
            refusal = refusal or result.error or "the gateway refuses every message"
            continue
        found.append((message, result))
    return found, refusal


def _record(
    session: so.Session, answered: list[tuple[Claimed, SendResult]], stats: DrainStats, done: set[int], owner: str
) -> None:
    """Write the answers (the caller commits), count them, and note their rows as settled."""
    if not answered:
        return
    now = utcnow()
    rows = []
    for message, result in answered:
        values = settle(message, result, now)
        rows.append({"id": message.id, **values})
        done.add(message.id)
        if values["status"] == "sent":
            stats.sent += 1
        elif values["status"] == "queued":
            stats.retried += 1
        else:
            stats.failed += 1
    write_rows(session, rows, owner)


def write_rows(session: so.Session, rows: list[dict[str, Any]], owner: str) -> None:
    """UPDATE outbound_message rows, each (by ``id``) to its own values, without the ORM.

    Only rows ``owner`` claimed last and nobody has settled since: a row that another
    drain recovered and claimed is that drain's to write. (A row recovered but not yet
    claimed again takes this drain's answer: it is the truth about what was sent.)

    One statement per set of columns (a request's answers usually share one). On
    PostgreSQL the values that differ go as one array per column into ``UPDATE ... FROM
    unnest(...)`` and the values every row shares as one parameter each: one round trip
    for any number of rows. SQLite, in-process, takes an executemany. The session's
    objects are not refreshed: the drain never reads them back.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    postgres = session.get_bind().dialect.name == "postgresql"
    for names, members in groups.items():
        columns = [name for name in names if name != "id"]
        if not postgres:
            values = [{"row_id": row["id"], "owner": owner, **{name: row[name] for name in columns}} for row in members]
            session.execute(_by_row(tuple(columns)), values)
            continue
        first = members[0]
        shared = tuple(name for name in columns if all(row[name] == first[name] for row in members))
        varying = ("id", *(name for name in columns if name not in shared))
        session.execute(_by_set(shared, varying), {
            "owner": owner,
            **{f"set_{name}": first[name] for name in shared},
            **{f"rows_{name}": [row[name] for row in members] for name in varying},
        })


# The rows a drain may still write its answers to: claimed by it last, not settled since
# (``queued`` or ``unknown`` when recovery got there first and nobody claimed them again).
# (An OR of equalities, not IN: an executemany cannot expand a list.)
_HELD = (
    TABLE.c.claimed_by == sa.bindparam("owner"),
    sa.or_(*(TABLE.c.status == status for status in ("sending", "queued", "unknown"))),
)


# The statements of ``write_rows`` are built once for each shape: a statement object
# reused keeps its cache key, so executing it again costs no SQL construction.
@functools.cache
def _by_row(columns: tuple[str, ...]) -> sa.Update:
    """UPDATE ... SET each column WHERE id = :row_id, for an executemany."""
    return sa.update(TABLE).where(TABLE.c.id == sa.bindparam("row_id"), *_HELD).values(
        {name: sa.bindparam(name, type_=TABLE.c[name].type) for name in columns}
    )


@functools.cache
def _by_set(shared: tuple[str, ...], varying: tuple[str, ...]) -> sa.Update:
    """UPDATE ... SET shared columns to :set_<column>, the others from unnest(:rows_<column>, ...)."""
    given = sa.func.unnest(*(
        sa.bindparam(f"rows_{name}", type_=postgresql.ARRAY(TABLE.c[name].type)) for name in varying
    )).table_valued(*varying).render_derived()
    return sa.update(TABLE).where(TABLE.c.id == given.c.id, *_HELD).values({
        **{name: sa.bindparam(f"set_{name}", type_=TABLE.c[name].type) for name in shared},
        **{name: given.c[name] for name in varying if name != "id"},
    })
