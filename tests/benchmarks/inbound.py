"""Benchmark 4: a burst of PRICE messages to POST /at/sms, then the drain; and the same
burst while a 100,000-message bulletin drains, to see replies overtake the bulk.

"Waits behind" is counted from the rows themselves: for each reply, the bulletins whose
``sent_at`` falls between the reply's ``created_at`` and its own ``sent_at``.
"""
from __future__ import annotations

import bisect
import datetime as dt
import threading
import time
import uuid
from collections import Counter

import sqlalchemy as sa

from smsgw.db import Database, utcnow
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways.africastalking import AfricasTalkingGateway
from tests.benchmarks import loadgen
from tests.benchmarks.common import Scale, gunicorn, log, percentiles, server_errors
from tests.benchmarks.drain import API_KEY, BATCH, drain_all
from tests.benchmarks.seed import World, farmer
from tests.fake_at import FakeAfricasTalking

WORDS = {"en": "PRICE MAIZE", "sw": "BEI MAHINDI", "fr": "PRIX MIL", "wo": "PRICE DUGUB"}


def _messages(world: World, first: int, count: int) -> list[dict[str, str]]:
    """One PRICE message from each of ``count`` farmers starting at farmer ``first``."""
    found = []
    for i in range(first, first + count):
        person = farmer(i % world.contacts, world)
        found.append({
            "from": person["phone"], "to": "22384", "text": WORDS[person["language"]],
            "id": f"bench-{uuid.uuid4()}", "date": utcnow().strftime("%Y-%m-%d %H:%M:%S"),
            "linkId": "", "networkCode": "63902",
        })
    return found


def burst(host: str, port: int, messages: list[dict[str, str]], clients: int) -> dict:
    """POST every message as fast as ``clients`` keep-alive connections allow."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    pending = iter(messages)

    def client(_: int) -> None:
        conn = loadgen.Connection(host, port)
        try:
            while True:
                with lock:
                    fields = next(pending, None)
                if fields is None:
                    return
                start = time.perf_counter()
                try:
                    status, _body = conn.post("/at/sms", fields)
                except OSError as exc:
                    status = 0
                    with lock:
                        errors[type(exc).__name__] += 1
                ms = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(ms)
                    if status != 200:
                        errors[f"http {status}"] += 1
        finally:
            conn.close()

    started = time.perf_counter()
    loadgen.run_threads(clients, client)
    seconds = time.perf_counter() - started
    return {"messages": len(messages), "seconds": round(seconds, 2), "per_s": round(len(messages) / seconds, 1),
            "latency_ms": percentiles(latencies), "errors": sum(errors.values()), "error_kinds": dict(errors)}


def _replies(db: Database, since: dt.datetime) -> list[tuple[dt.datetime, dt.datetime | None]]:
    with db.session() as session:
        return list(session.execute(sa.text(
            "SELECT created_at, sent_at FROM outbound_message WHERE purpose = 'reply' AND created_at >= :t ORDER BY id"
        ), {"t": since}).all())


def _queue_bulletins(url: str, day: dt.date) -> int:
    """A fresh copy of the last bulletin (new day, new keys) queued now; how many rows."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        queued = conn.execute(sa.text(
            "INSERT INTO outbound_message (idempotency_key, to_phone, contact_id, text, purpose, priority, encoding,"
            " segments, sender_id, status, attempts, next_attempt_at, last_error, created_at)"
            " SELECT 'bulletin:daily:' || :day || ':' || contact_id, to_phone, contact_id, text, purpose, priority,"
            " encoding, segments, sender_id, 'queued', 0, now(), '', now()"
            " FROM outbound_message WHERE purpose = 'bulletin' AND idempotency_key LIKE 'bulletin:daily:%'"
            " AND idempotency_key NOT LIKE 'bulletin:daily:' || :day || ':%'"
        ), {"day": day.isoformat()}).rowcount
    engine.dispose()
    return queued


def _waits(url: str, since: dt.datetime) -> dict:
    """For each reply since ``since``: bulletins sent between its creation and its send."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        sent = sorted(
            conn.execute(
                sa.text(
                    "SELECT sent_at FROM outbound_message WHERE purpose = 'bulletin' AND created_at >= :t AND sent_at "
                    "IS NOT NULL"
                ),
                {"t": since},
            ).scalars()
        )
        replies = conn.execute(sa.text(
            "SELECT created_at, sent_at FROM outbound_message WHERE purpose = 'reply' AND created_at >= :t"
        ), {"t": since}).all()
    engine.dispose()
    behind, waits, overlapping = [], [], 0
    last_bulk = sent[-1] if sent else None
    for created, done in replies:
        if done is None:
            continue
        behind.append(bisect.bisect_left(sent, done) - bisect.bisect_right(sent, created))
        waits.append((done - created).total_seconds() * 1000)
        if last_bulk is not None and created < last_bulk:
            overlapping += 1
    return {
        "replies": len(replies), "replies_sent": len(waits), "replies_while_bulk_draining": overlapping,
        "bulletins_sent": len(sent),
        "bulk_sent_between_reply_created_and_sent": {"max": max(behind, default=None), **percentiles(behind),
                                                      "mean": round(sum(behind) / len(behind), 1) if behind else None},
        "reply_wait_ms": percentiles(waits),
    }


def run(url: str, world: World, scale: Scale, day: dt.date) -> dict:
    """Burst then drain; then burst during a bulletin drain."""
    count = scale.inbound
    db = Database(url)
    result: dict = {"messages_per_burst": count}
    # The global reply cap (an anti-pumping guard) would answer only the first of the
    # burst; this measures capacity, so it is raised for the run.
    with (
        gunicorn(url, {"SMS_GLOBAL_REPLIES_PER_HOUR": str(10 * count)}) as server,
        FakeAfricasTalking(api_key=API_KEY) as fake,
    ):
        gateway = AfricasTalkingGateway("sandbox", API_KEY, api_base=fake.base_url)
        host, port = server.host, server.port
        log(f"inbound: burst of {count:,} PRICE messages")
        since = utcnow()
        messages = _messages(world, 0, count)
        result["burst"] = burst(host, port, messages, scale.ussd_clients)
        log(f"inbound: {result['burst']['per_s']} msg/s accepted; draining the replies")
        drained = drain_all(db, gateway)
        replies = _replies(db, since)
        last = max((sent for _, sent in replies if sent), default=None)
        result["drain_after_burst"] = {"seconds": round(drained["seconds"], 2), "requests": drained.get("requests", 0),
                                       "sent": drained.get("sent", 0)}
        result["replies"] = len(replies)
        result["seconds_to_last_reply"] = round((last - since).total_seconds(), 2) if last else None

        since_b = utcnow()
        queued = _queue_bulletins(url, day + dt.timedelta(days=1))
        log(f"inbound: {queued:,} bulletins queued; burst again while they drain")
        done = threading.Event()
        passes = Counter()

        def drainer() -> None:
            while True:
                stats = drain_once(db, gateway, batch_size=BATCH, chunk=BATCH)
                passes.update({"passes": 1 if stats.claimed else 0, "sent": stats.sent, "requests": stats.requests})
                if not stats.claimed:
                    if done.is_set():
                        return
                    time.sleep(0.05)

        thread = threading.Thread(target=drainer, daemon=True)
        thread.start()
        result["burst_during_bulk"] = burst(host, port, _messages(world, count, count), scale.ussd_clients)
        done.set()
        thread.join()
        result["bulk_drain"] = {"bulletins_queued": queued, **dict(passes)}
        result["during_bulk"] = _waits(url, since_b)
        result["server_log_errors"] = server_errors(server)
    db.dispose()
    behind = result["during_bulk"]["bulk_sent_between_reply_created_and_sent"]["max"]
    result["targets"] = {
        "every_message_answered": result["replies"] == count,
        "no_reply_waits_behind_more_than_one_batch": behind is not None and behind <= BATCH,
    }
    return result
