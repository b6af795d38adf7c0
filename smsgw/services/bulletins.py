"""Daily price and weekly buyer-offer bulletins: compose per subscriber, queue once.

A run is claimed by a ``bulletin_run`` row (unique on kind, market, date) and every
message carries the key ``bulletin:<kind>:<date>:<contact>``, so running the same day
twice, two schedulers, or a crash and restart in the middle never skips nor repeats
anyone. Subscribers are read as plain rows in id-ordered batches, each queued by one
INSERT and committed on its own, so memory stays flat whatever their number; a text is
composed once for everyone who shares its language, home market and alerts.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from smsgw import config
from smsgw.db import Database, utcnow
from smsgw.messaging import outbox
from smsgw.messaging.encoding import Encoded, encode_for_sms
from smsgw.models import BulletinRun, Commodity, Contact, Market, OutboundMessage, Subscription
from smsgw.services.bulletin_texts import QuoteCache, daily_text, weekly_text

BATCH = 500
# How far back a subscriber's bulletins count against the daily cap.
DAY = dt.timedelta(days=1)

# The default texts; a caller may pass its own ``composers`` (same signature) to run_bulletin.
COMPOSERS: dict[str, Callable[..., str | None]] = {"daily": daily_text, "weekly": weekly_text}
# What subscribers who get the same bulletin share: language, home market id, alerts (in order).
TextKey = tuple[str, int | None, tuple[tuple[int, int], ...]]


@dataclass
class RunReport:
    """What a bulletin run queued (or would queue, on a dry run)."""

    market: str
    messages: int = 0
    segments: int = 0
    skipped_taken: bool = False
    by_language: dict[str, int] = field(default_factory=dict)
    distinct_texts: int = 0


@dataclass(frozen=True)
class Policy:
    """Limits from settings: price freshness, quiet hours, caps, sender ids.

    How old a price may be comes from ``prices.price_max_age`` (PRICE_MAX_AGE_DAYS and
    PRICE_MAX_AGE_BY_COMMODITY in ``price_settings``), the one rule farmer answers use too;
    ``stale_days`` only tightens it for one run (a test, a cautious operator).
    """

    stale_days: int | None = None
    quiet_start: int = config.defaults()["BULLETIN_QUIET_START"]
    quiet_end: int = config.defaults()["BULLETIN_QUIET_END"]
    daily_cap: int = config.defaults()["BULLETIN_DAILY_CAP"]
    sender_ids: Mapping[str, str] = field(default_factory=dict)
    price_settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Policy:
        """The policy configured in ``settings``."""
        return cls(
            quiet_start=int(settings.get("BULLETIN_QUIET_START", cls.quiet_start)),
            quiet_end=int(settings.get("BULLETIN_QUIET_END", cls.quiet_end)),
            daily_cap=int(settings.get("BULLETIN_DAILY_CAP", cls.daily_cap)),
            sender_ids=config.sender_ids(settings),
            # PRICE_* for freshness, STORAGE_* for the weekly storage line of harvest months
            price_settings={
                key: value for key, value in settings.items() if key.startswith(("PRICE_", "STORAGE_"))
            },
        )

    def max_age(self) -> Mapping[str, Any] | int:
        """What a composer is given as its freshness rule (see ``bulletin_texts.MaxAge``)."""
        if self.stale_days is None:
            return self.price_settings
        return self.stale_days

    def not_before(self, market: Market, now: dt.datetime) -> dt.datetime:
        """``now``, or the end of the market's quiet hours if ``now`` falls inside them."""
        local = now.astimezone(ZoneInfo(market.timezone))
        quiet = local.hour >= self.quiet_start or local.hour < self.quiet_end
        if not quiet:
            return now
        day = local.date() + dt.timedelta(days=1 if local.hour >= self.quiet_start else 0)
        return dt.datetime.combine(
            day, dt.time(self.quiet_end), ZoneInfo(market.timezone)
        ).astimezone(dt.UTC)


@dataclass(frozen=True)
class Alert:
    """One alert as a composer reads it: ids and the loaded commodity and market."""

    commodity_id: int
    market_id: int
    commodity: Commodity
    market: Market


@dataclass(frozen=True)
class Profile:
    """A read-only stand-in for ``Contact``: what composers read, built from plain rows."""

    language: str
    home_market_id: int | None
    home_market: Market | None
    subscriptions: tuple[Alert, ...]


@dataclass(frozen=True)
class Recipient:
    """One of a batch: who gets the bulletin, and the key of the text they get."""

    id: int
    phone: str
    language: str
    key: TextKey


def _recipients(
    session: so.Session, market_id: int, after_id: int, capped_since: dt.datetime | None, cap: int
) -> list[Recipient]:
    """The next batch of consenting subscribers whose bulletin follows the market, as plain rows.

    A bulletin follows the home market, else the first alert's market. One statement reads
    the batch's contacts, only the columns needed; with ``capped_since`` it leaves out those
    who got ``cap`` bulletins since then (the cap index serves it). A second reads their
    alerts, in the order they were made.
    """
    first_alert_market = (
        sa.select(Subscription.market_id)
        .where(Subscription.contact_id == Contact.id)
        .order_by(Subscription.id)
        .limit(1)
        .scalar_subquery()
    )
    conditions = [Contact.id > after_id, Contact.consent != "withdrawn"]
    # Two statements, not one with OR: each walks an index in id order (contact by home
    # market and id), where the OR made every market's run read every contact.
    followers = [
        sa.and_(Contact.home_market_id == market_id, sa.exists().where(Subscription.contact_id == Contact.id)),
        sa.and_(Contact.home_market_id.is_(None), first_alert_market == market_id),
    ]
    if capped_since is not None:
        already = (
            sa.select(sa.func.count())
            .where(
                OutboundMessage.contact_id == Contact.id,
                OutboundMessage.purpose == "bulletin",
                OutboundMessage.created_at >= capped_since,
            )
            .scalar_subquery()
        )
        conditions.append(already < cap)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The planner cannot tell how many contacts follow this market, so it prices the
        # scan of the whole table, and past jit_above_cost it compiles the statement: ~10 ms
        # of JIT for a ~3 ms query, every batch. Only this transaction is affected.
        session.execute(sa.text("SET LOCAL jit = off"))
    found = [
        row
        for follows in followers
        for row in session.execute(
            sa.select(Contact.id, Contact.phone, Contact.language, Contact.home_market_id)
            .where(*conditions, follows)
            .order_by(Contact.id)
            .limit(BATCH)
        )
    ]
    contacts = sorted(found, key=lambda row: row.id)[:BATCH]
    if not contacts:
        return []
    # The alerts by a second statement on their ids, not a join with the batch above: once
    # the driver prepares the join, PostgreSQL's generic plan expects one contact and reads
    # every subscription for each of them (15 million rows for a batch of 500).
    ids = [row.id for row in contacts]
    # On PostgreSQL the ids go as one array: 500 separate parameters take longer to plan than to read.
    in_batch = (
        Subscription.contact_id == sa.any_(sa.bindparam("ids", ids, type_=postgresql.ARRAY(sa.Integer)))
        if postgres
        else Subscription.contact_id.in_(ids)
    )
    alerts: dict[int, list[tuple[int, int]]] = {}
    for contact_id, commodity_id, alert_market_id in session.execute(
        sa.select(Subscription.contact_id, Subscription.commodity_id, Subscription.market_id)
        .where(in_batch)
        .order_by(Subscription.id)
    ):
        alerts.setdefault(contact_id, []).append((commodity_id, alert_market_id))
    return [
        Recipient(contact_id, phone, language, (language, home_market_id, tuple(alerts[contact_id])))
        for contact_id, phone, language, home_market_id in contacts
    ]


def _claim(db: Database, kind: str, market_id: int, day: dt.date) -> bool:
    """Take the run; False if it already finished (a second scheduler or a repeat)."""
    with db.session() as session:
        run = session.scalar(
            sa.select(BulletinRun).where(
                BulletinRun.kind == kind,
                BulletinRun.market_id == market_id,
                BulletinRun.run_date == day,
            )
        )
        if run is not None:
            return run.finished_at is None  # unfinished: a crashed run, resumed safely by the keys
        try:
            with session.begin_nested():
                session.add(BulletinRun(kind=kind, market_id=market_id, run_date=day))
        except IntegrityError:
            return False
    return True


def _finish(session: so.Session, kind: str, market_id: int, day: dt.date, messages: int) -> None:
    """Mark the run finished, adding the messages it queued (the caller commits)."""
    session.execute(
        sa.update(BulletinRun)
        .where(
            BulletinRun.kind == kind,
            BulletinRun.market_id == market_id,
            BulletinRun.run_date == day,
        )
        .values(finished_at=utcnow(), messages=BulletinRun.messages + messages)
    )


def _compose(
    session: so.Session,
    kind: str,
    key: TextKey,
    day: dt.date,
    policy: Policy,
    cache: QuoteCache,
    texts: dict[TextKey, Encoded | None],
    composers: Mapping[str, Callable[..., str | None]] = COMPOSERS,
) -> Encoded | None:
    """The bulletin of everyone with ``key``, encoded; composed once per run.

    A composer reads only the language, the home market and the alerts (in order), so
    subscribers who share those share the text: thousands of them, a few hundred texts.
    Only a new key loads its markets and commodities (from the session's identity map
    once loaded).
    """
    if key not in texts:
        language, home_market_id, alerts = key
        profile = Profile(
            language=language,
            home_market_id=home_market_id,
            home_market=session.get(Market, home_market_id) if home_market_id is not None else None,
            subscriptions=tuple(
                Alert(
                    commodity_id=commodity_id,
                    market_id=market_id,
                    commodity=session.get_one(Commodity, commodity_id),
                    market=session.get_one(Market, market_id),
                )
                for commodity_id, market_id in alerts
            ),
        )
        text = composers[kind](session, profile, day, policy.max_age(), cache)
        texts[key] = None if text is None else encode_for_sms(text, language)
    return texts[key]


def run_bulletin(
    db: Database,
    kind: str,
    market_code: str,
    day: dt.date,
    policy: Policy,
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    pause: Callable[[], None] | None = None,
    composers: Mapping[str, Callable[..., str | None]] = COMPOSERS,
) -> RunReport:
    """Compose and queue one market's bulletin for ``day`` (nothing is queued on a dry run).

    ``composers`` maps a kind to its text composer (default: ``services.bulletin_texts``).
    """
    with db.session() as session:
        market = session.scalar(sa.select(Market).where(Market.code == market_code))
        if market is None:
            raise ValueError(f"unknown market {market_code!r}")
        market_id = market.id
        now = utcnow()
        sender = policy.sender_ids.get(market.country)
        not_before = policy.not_before(market, now)
    report = RunReport(market=market_code)
    if not dry_run and not _claim(db, kind, market_id, day):
        report.skipped_taken = True
        return report
    texts: set[str] = set()
    # A dry run tells what the texts would reach, caps aside.
    capped_since = None if dry_run else now - DAY
    after = 0
    cache: QuoteCache = {}
    composed: dict[TextKey, Encoded | None] = {}
    # One session for the run, so the markets, crops and units that composing loads stay
    # loaded; one transaction per batch, committed before any pause, so a crash loses at
    # most the batch in hand and other writers get their turn between batches.
    with db.session() as session:
        while True:
            recipients = _recipients(session, market_id, after, capped_since, policy.daily_cap)
            queued = []
            for recipient in recipients:
                encoded = _compose(session, kind, recipient.key, day, policy, cache, composed, composers)
                if encoded is None:
                    continue
                report.messages += 1
                report.segments += encoded.segments
                report.by_language[recipient.language] = report.by_language.get(recipient.language, 0) + 1
                texts.add(encoded.text)
                queued.append(
                    outbox.Queued(
                        to=recipient.phone,
                        text=encoded.text,
                        key=f"bulletin:{kind}:{day.isoformat()}:{recipient.id}",
                        lang=recipient.language,
                        contact_id=recipient.id,
                    )
                )
            # A short batch is the last: no need to read the contacts once more to find none.
            last = len(recipients) < BATCH
            if dry_run:
                session.rollback()
            else:
                # One INSERT per batch; the keys still make a repeated run add nothing.
                outbox.enqueue_many(session, queued, purpose="bulletin", sender_id=sender, not_before=not_before)
                if last:
                    # In the last batch's transaction: the run is finished exactly when all is queued.
                    _finish(session, kind, market_id, day, report.messages)
                session.commit()
            if progress and recipients:
                progress(len(recipients))
            if last:
                break
            after = recipients[-1].id
            if pause:
                pause()
    report.distinct_texts = len(texts)
    return report


def due_runs(
    session: so.Session, now: dt.datetime, grace: dt.timedelta = dt.timedelta(hours=3)
) -> list[tuple[str, str, dt.date]]:
    """(kind, market code, local date) of runs due now and not finished.

    A market's run is due from its bulletin hour, local time, for ``grace``; computed
    from the zone each time, so DST changes and markets in different zones need nothing
    special. The weekly bulletin goes on Mondays.
    """
    due = []
    finished = {
        (run.kind, run.market_id, run.run_date)
        for run in session.scalars(
            sa.select(BulletinRun).where(
                BulletinRun.finished_at.is_not(None),
                BulletinRun.run_date >= (now - dt.timedelta(days=2)).date(),
            )
        )
    }
    for market in session.scalars(sa.select(Market).order_by(Market.id)):
        local = now.astimezone(ZoneInfo(market.timezone))
        start = dt.datetime.combine(
            local.date(), dt.time(market.bulletin_hour), ZoneInfo(market.timezone)
        )
        if not start <= local < start + grace:
            continue
        kinds = ["daily"] + (["weekly"] if local.weekday() == 0 else [])
        for kind in kinds:
            if (kind, market.id, local.date()) not in finished:
                due.append((kind, market.code, local.date()))
    return due


def estimated_cost(segments: int, currency: str, settings: Mapping[str, Any]) -> decimal.Decimal:
    """Segments times the configured price per segment in ``currency``."""
    prices = dict(
        item.split(":", 1)
        for item in str(settings.get("SMS_SEGMENT_COST", "")).split(",")
        if ":" in item
    )
    return decimal.Decimal(prices.get(currency, "0")) * segments
