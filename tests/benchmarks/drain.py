"""Benchmark 3: the queued bulletins through the real Africa's Talking SDK to the fake API.

Limit: the fake's own rate for requests of the same batch size sent by a plain
``requests`` client, one after another as the drain sends them.
"""
from __future__ import annotations

import math
import time
from collections import Counter

import requests
import sqlalchemy as sa

from smsgw.db import Database
from smsgw.messaging.drain import drain_once
from smsgw.messaging.gateways.africastalking import AfricasTalkingGateway
from tests.benchmarks.common import log, ratio
from tests.fake_at import PATH, FakeAfricasTalking

BATCH = 500
API_KEY = "bench-key"


def expected_requests(url: str, purpose: str = "bulletin") -> tuple[int, int, int]:
    """(distinct texts, queued messages, requests allowed) for the queued ``purpose`` rows."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        groups = conn.execute(sa.text(
            "SELECT count(*) FROM outbound_message WHERE status = 'queued' AND purpose = :p GROUP BY text, sender_id"
        ), {"p": purpose}).scalars().all()
    engine.dispose()
    return len(groups), sum(groups), sum(math.ceil(n / BATCH) for n in groups)


def drain_all(db: Database, gateway: AfricasTalkingGateway) -> dict:
    """Drain until nothing is due; totals of every pass."""
    totals: Counter[str] = Counter()
    passes = 0
    started = time.perf_counter()
    while True:
        stats = drain_once(db, gateway, batch_size=BATCH, chunk=BATCH)
        if not stats.claimed:
            break
        passes += 1
        totals.update({"claimed": stats.claimed, "sent": stats.sent, "retried": stats.retried,
                       "failed": stats.failed, "requests": stats.requests})
    return {"seconds": time.perf_counter() - started, "passes": passes, **totals}


def plain_limit(phones: list[str], requests_count: int) -> dict:
    """Requests/s of the fake for ``BATCH``-recipient requests from a bare ``requests`` loop."""
    with FakeAfricasTalking(api_key=API_KEY) as fake:
        url = fake.base_url + PATH
        headers = {"Accept": "application/json", "apiKey": API_KEY}
        to = ",".join(phones[:BATCH])
        started = time.perf_counter()
        for n in range(requests_count):
            answer = requests.post(url, headers=headers, timeout=30, data={
                "username": "sandbox", "to": to, "message": f"limit {n}", "bulkSMSMode": 1, "enqueue": 1,
            })
            answer.raise_for_status()
        seconds = time.perf_counter() - started
    return {"requests": requests_count, "recipients_per_request": min(BATCH, len(phones)), "seconds": round(seconds, 2),
            "requests_per_s": round(requests_count / seconds, 1),
            "messages_per_s": round(requests_count * min(BATCH, len(phones)) / seconds, 1)}


def run(url: str) -> dict:
    """Send everything queued; check each bulletin went once; compare with the plain client."""
    texts, queued, allowed = expected_requests(url)
    log(f"drain: {queued:,} bulletins, {texts} distinct texts, at most {allowed} requests allowed")
    db = Database(url)
    with FakeAfricasTalking(api_key=API_KEY) as fake:
        gateway = AfricasTalkingGateway("sandbox", API_KEY, api_base=fake.base_url)
        result = drain_all(db, gateway)
        received = fake.received()
        made = len(fake.requests)
        answers = dict(fake.answers())
    with db.session() as session:
        states = dict(session.execute(sa.text(
            "SELECT status, count(*) FROM outbound_message WHERE purpose = 'bulletin' GROUP BY status")).all())
        phones = list(session.scalars(sa.text("SELECT phone FROM contact ORDER BY id LIMIT :n"), {"n": BATCH}))
    db.dispose()
    duplicates = sum(1 for count in received.values() if count > 1)
    rate = result["sent"] / result["seconds"] if result["seconds"] else None
    log(f"drain: {result['sent']:,} sent in {result['seconds']:.1f} s with {made} requests; plain client limit")
    limit = plain_limit(phones, max(20, min(made, 300)))
    return {
        "messages": queued,
        "distinct_texts": texts,
        "batch_size": BATCH,
        "seconds": round(result["seconds"], 2),
        "messages_per_s": round(rate, 1) if rate else None,
        "gateway_requests": made,
        "requests_allowed": allowed,
        "drain_passes": result["passes"],
        "fake_answers": answers,
        "bulletin_states": states,
        "sent_once": len(received) == queued and duplicates == 0 and states.get("sent", 0) == queued,
        "duplicates": duplicates,
        "plain_client_limit": limit,
        "ratio_messages_per_s_to_limit": ratio(rate, limit["messages_per_s"]),
        "ratio_requests_per_s_to_limit": ratio(
            made / result["seconds"] if result["seconds"] else None, limit["requests_per_s"]
        ),
        "targets": {
            "requests_within_allowed": made <= allowed,
            "every_message_sent_once": len(received) == queued and duplicates == 0,
        },
    }
