"""Many members commit to one order at once, each thread with its own connection and
committed transactions: the total is exact, nothing is lost or counted twice, and nothing
gets in after the order closes.

These tests commit for real (not in the per-test rolled-back transaction), so they add
their own members and delete every row they created at the end.

PostgreSQL only (the ``postgres`` mark; .ci/run's second pass, with TEST_DATABASE_URL).
SQLite cannot race here: it has one writer per database file, so every thread's write
transaction waits for the database lock and the "concurrent" commits run one after
another. The row locks, conditional updates and retries these tests are about are never
contended on SQLite, and a pass there would prove nothing about them (the commit and
close logic itself is covered, sequentially, by tests/test_orders.py).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.models import (
    Commitment,
    Commodity,
    Contact,
    GroupOrder,
    Membership,
    OrderPriceTier,
    OutboundMessage,
    ProducerGroup,
    Unit,
)
from smsgw.services import orders
from smsgw.services.orders import OrderError

pytestmark = pytest.mark.postgres
PHONE_PREFIX = "+2547100000"
LEADER = "+254700000001"


@dataclass
class Setup:
    """The order under test and the members added for it."""

    order_id: int
    leader: Contact
    members: list[Contact]
    units: dict[str, Unit]


@pytest.fixture()
def real_engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine of our own whose transactions really commit (on PostgreSQL)."""
    # Enough connections for every thread at once (the project default is 15).
    engine = sa.create_engine(database_url, pool_size=50, max_overflow=0, pool_timeout=120)
    yield engine
    engine.dispose()


def _sessionmaker(engine: sa.Engine) -> so.sessionmaker[so.Session]:
    return so.sessionmaker(bind=engine, expire_on_commit=False)


def _setup(engine: sa.Engine, n: int) -> Setup:
    """Add ``n`` members to the Ngata group and open a maize order (committed)."""
    with _sessionmaker(engine).begin() as session:
        group = session.scalars(
            sa.select(ProducerGroup).where(ProducerGroup.code == "ngata-farmers")
        ).one()
        members = [
            Contact(
                phone=f"{PHONE_PREFIX}{i:02d}",
                name=f"Test member {i}",
                language=("en", "sw")[i % 2],
                consent="granted",
            )
            for i in range(n)
        ]
        session.add_all(members)
        session.flush()
        session.add_all(
            Membership(group_id=group.id, contact_id=m.id, role="member") for m in members
        )
        leader = session.scalars(sa.select(Contact).where(Contact.phone == LEADER)).one()
        units = {u.code: u for u in session.scalars(sa.select(Unit))}
        maize = session.scalars(sa.select(Commodity).where(Commodity.code == "maize")).one()
        order = orders.open_order(
            session,
            leader,
            group,
            kind="sell",
            commodity=maize,
            target_quantity=Decimal(1000),
            unit=units["bag90"],
            price=Decimal(4350),
            deadline=utcnow() + dt.timedelta(days=1),
        )
        return Setup(order.id, leader, members, units)


def _cleanup(engine: sa.Engine, setup: Setup | None) -> None:
    """Delete the order, its commitments and SMS, and the members we added."""
    with engine.begin() as conn:
        added = (
            sa.select(Contact.id).where(Contact.phone.startswith(PHONE_PREFIX)).scalar_subquery()
        )
        if setup is not None:
            conn.execute(
                sa.delete(OutboundMessage).where(
                    OutboundMessage.idempotency_key.startswith(f"order:{setup.order_id}:")
                )
            )
            conn.execute(sa.delete(Commitment).where(Commitment.order_id == setup.order_id))
            conn.execute(sa.delete(OrderPriceTier).where(OrderPriceTier.order_id == setup.order_id))
            conn.execute(sa.delete(GroupOrder).where(GroupOrder.id == setup.order_id))
        conn.execute(sa.delete(OutboundMessage).where(OutboundMessage.contact_id.in_(added)))
        conn.execute(sa.delete(Membership).where(Membership.contact_id.in_(added)))
        conn.execute(sa.delete(Contact).where(Contact.phone.startswith(PHONE_PREFIX)))


@pytest.fixture()
def order_with_members(real_engine: sa.Engine) -> Iterator[Callable[[int], Setup]]:
    """Call with a member count; everything it made is removed after the test."""
    made: list[Setup] = []

    def make(n: int) -> Setup:
        made.append(_setup(real_engine, n))
        return made[-1]

    try:
        yield make
    finally:
        _cleanup(real_engine, made[-1] if made else None)


def _state(engine: sa.Engine, order_id: int) -> tuple[GroupOrder, Decimal, dict[int, Decimal]]:
    """The order as stored, SUM(order_quantity), and each member's commitment."""
    with _sessionmaker(engine)() as session:
        order = session.get(GroupOrder, order_id)
        assert order is not None
        total = session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Commitment.order_quantity), 0)).where(
                Commitment.order_id == order_id
            )
        )
        rows = session.execute(
            sa.select(Commitment.contact_id, Commitment.order_quantity).where(
                Commitment.order_id == order_id
            )
        ).all()
        return order, Decimal(total).quantize(Decimal("0.001")), {c: q for c, q in rows}


def _count_sms(engine: sa.Engine, order_id: int, event: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            sa.select(sa.func.count(OutboundMessage.id)).where(
                OutboundMessage.idempotency_key.startswith(f"order:{order_id}:{event}:")
            )
        )


def _run(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` for i in range(n) on n threads released at the same moment."""
    barrier = threading.Barrier(n)

    def start(i: int) -> object:
        barrier.wait(timeout=60)
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(start, range(n)))


def _quantity(i: int) -> tuple[Decimal, str, Decimal]:
    """Member i's quantity, its unit, and the same in 90 kg bags (three decimals)."""
    if i % 3 == 0:
        return Decimal(45 * (i % 7 + 1)), "kg", Decimal("0.5") * (i % 7 + 1)
    if i % 3 == 1:
        return Decimal(i % 5 + 1), "bag90", Decimal(i % 5 + 1)
    return Decimal("0.5"), "tonne", Decimal("5.556")  # 500 kg = 5.5555... bags


def concurrent_commits(engine: sa.Engine, setup: Setup) -> None:
    n = len(setup.members)
    make_session = _sessionmaker(engine)

    def work(i: int) -> int:
        member = setup.members[i]
        quantity, unit_code, _ = _quantity(i)
        with make_session.begin() as session:
            result = orders.commit(
                session,
                setup.order_id,
                member,
                quantity,
                setup.units[unit_code],
                now=utcnow(),
                event_key=f"t{i}a",
            )
        if i % 2 == 0:
            # A member who changes their mind commits again: replaced, not added.
            with make_session.begin() as session:
                orders.commit(
                    session, setup.order_id, member, Decimal(3), now=utcnow(), event_key=f"t{i}b"
                )
        return result.members

    first_counts = _run(n, work)
    # Each first commitment was counted on top of all those before it, exactly once.
    assert sorted(first_counts) == list(range(1, n + 1))
    order, summed, rows = _state(engine, setup.order_id)
    expected = {
        m.id: Decimal(3) if i % 2 == 0 else _quantity(i)[2] for i, m in enumerate(setup.members)
    }
    assert rows == expected
    assert order.committed_total == summed == sum(expected.values())
    assert _count_sms(engine, setup.order_id, "commit") == n + (n + 1) // 2


def concurrent_commits_withdrawals_and_close(engine: sa.Engine, setup: Setup) -> None:
    n = len(setup.members)
    make_session = _sessionmaker(engine)
    first_done = threading.Semaphore(0)
    closed = threading.Event()

    def act(action: Callable[[so.Session], object]) -> str:
        try:
            with make_session.begin() as session:
                action(session)
            return "ok"
        except OrderError as error:
            return error.code

    def member_work(i: int) -> list[tuple[str, str, Decimal]]:
        """Commit, then withdraw (every third member) or change; a last try after close."""
        member, (quantity, unit_code, bags) = setup.members[i], _quantity(i)
        unit, order_id, log = setup.units[unit_code], setup.order_id, []
        try:
            outcome = act(
                lambda s: orders.commit(
                    s, order_id, member, quantity, unit, now=utcnow(), event_key=f"t{i}a"
                )
            )
            log.append((outcome, "commit", bags))
        finally:
            first_done.release()
        if i % 3 == 0:
            outcome = act(
                lambda s: orders.withdraw(s, order_id, member, now=utcnow(), event_key=f"t{i}b")
            )
            log.append((outcome, "withdraw", Decimal(0)))
        else:
            outcome = act(
                lambda s: orders.commit(
                    s, order_id, member, Decimal(2), now=utcnow(), event_key=f"t{i}b"
                )
            )
            log.append((outcome, "commit", Decimal(2)))
        assert closed.wait(timeout=60), "the leader never closed the order"
        outcome = act(
            lambda s: orders.commit(
                s, order_id, member, Decimal(7), now=utcnow(), event_key=f"t{i}c"
            )
        )
        log.append((outcome, "late", Decimal(7)))
        return log

    def closer() -> None:
        """Close once half the members have made their first move, while the rest go on."""
        try:
            give_up = time.monotonic() + 60
            for _ in range(n // 2):
                assert first_done.acquire(timeout=max(0.0, give_up - time.monotonic()))
            with make_session.begin() as session:
                orders.close(session, setup.order_id, setup.leader, now=utcnow())
        finally:
            closed.set()  # members must not wait for a closer that failed

    with ThreadPoolExecutor(max_workers=1) as close_pool:
        closing = close_pool.submit(closer)
        logs = _run(n, member_work)
        closing.result(timeout=60)

    outcomes = [entry for log in logs for entry in log]
    assert {outcome for outcome, _, _ in outcomes} <= {"ok", "not_open"}
    assert all(outcome == "not_open" for outcome, kind, _ in outcomes if kind == "late")
    assert sum(log[0][0] == "ok" for log in logs) >= n // 2  # the close came midway
    expected: dict[int, Decimal] = {}
    successes = 0
    for member, log in zip(setup.members, logs, strict=True):
        for outcome, _, bags in log:
            if outcome == "ok":
                successes += 1
                expected[member.id] = bags
    order, summed, rows = _state(engine, setup.order_id)
    assert order.status == "closed"
    assert rows == {contact_id: bags for contact_id, bags in expected.items() if bags > 0}
    assert order.committed_total == summed == sum(rows.values(), Decimal(0))
    # One receipt per change that went in, none for a refused one; one closing SMS each.
    receipts = _count_sms(engine, setup.order_id, "commit") + _count_sms(
        engine, setup.order_id, "withdraw"
    )
    assert receipts == successes
    assert _count_sms(engine, setup.order_id, "closed") == len(rows)


def test_hundred_concurrent_commits_on_postgres(real_engine, order_with_members) -> None:
    concurrent_commits(real_engine, order_with_members(100))


def test_hundred_members_commit_withdraw_and_the_leader_closes_midway_on_postgres(
    real_engine, order_with_members
) -> None:
    concurrent_commits_withdrawals_and_close(real_engine, order_with_members(100))


def test_twenty_concurrent_commits(real_engine, order_with_members) -> None:
    concurrent_commits(real_engine, order_with_members(20))


def test_twenty_members_commit_withdraw_and_the_leader_closes_midway(
    real_engine, order_with_members
) -> None:
    concurrent_commits_withdrawals_and_close(real_engine, order_with_members(20))
