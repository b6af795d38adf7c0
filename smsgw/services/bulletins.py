"""Daily price and weekly buyer-offer bulletins: compose per subscriber, queue once.

A run is claimed by a ``bulletin_run`` row (unique on kind, market, date) and every
message carries the key ``bulletin:<kind>:<date>:<contact>``, so running the same day
twice, two schedulers, or a crash and restart in the middle never skips nor repeats
anyone. Subscribers are read in id-ordered batches, each committed on its own, so memory
stays flat whatever their number.
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
from sqlalchemy.exc import IntegrityError

from smsgw import config
from smsgw.db import Database, utcnow
from smsgw.messaging import outbox
from smsgw.messaging.encoding import Encoded, encode_for_sms
from smsgw.models import BulletinRun, Contact, Market, OutboundMessage, Subscription
from smsgw.services.bulletin_texts import QuoteCache, daily_text, weekly_text

BATCH = 500


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


def bulletin_market(contact: Contact) -> int | None:
    """The market whose morning hour a contact's bulletin follows: home, else first alert's."""
    if contact.home_market_id:
        return contact.home_market_id
    return contact.subscriptions[0].market_id if contact.subscriptions else None


def _recipients(session: so.Session, market: Market, after_id: int) -> list[Contact]:
    """The next batch of consenting subscribers whose bulletin follows ``market``."""
    first_sub_market = (
        sa.select(Subscription.market_id)
        .where(Subscription.contact_id == Contact.id)
        .order_by(Subscription.id)
        .limit(1)
        .scalar_subquery()
    )
    query = (
        sa.select(Contact)
        .where(
            Contact.id > after_id,
            Contact.consent != "withdrawn",
            sa.exists().where(Subscription.contact_id == Contact.id),
            sa.func.coalesce(Contact.home_market_id, first_sub_market) == market.id,
        )
        .order_by(Contact.id)
        .limit(BATCH)
        .options(
            so.selectinload(Contact.subscriptions).joinedload(Subscription.commodity),
            so.selectinload(Contact.subscriptions).joinedload(Subscription.market),
        )
    )
    return list(session.scalars(query).all())


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


def _finish(db: Database, kind: str, market_id: int, day: dt.date, messages: int) -> None:
    with db.session() as session:
        session.execute(
            sa.update(BulletinRun)
            .where(
                BulletinRun.kind == kind,
                BulletinRun.market_id == market_id,
                BulletinRun.run_date == day,
            )
            .values(finished_at=utcnow(), messages=BulletinRun.messages + messages)
        )


def _capped(session: so.Session, contacts: list[Contact], policy: Policy, now: dt.datetime) -> set[int]:
    """Ids of the batch's contacts who already got ``daily_cap`` bulletins in the last day."""
    return set(session.scalars(
        sa.select(OutboundMessage.contact_id)
        .where(
            OutboundMessage.contact_id.in_([contact.id for contact in contacts]),
            OutboundMessage.purpose == "bulletin",
            OutboundMessage.created_at >= now - dt.timedelta(days=1),
        )
        .group_by(OutboundMessage.contact_id)
        .having(sa.func.count(OutboundMessage.id) >= policy.daily_cap)
    ))


# The default texts; a caller may pass its own ``composers`` (same signature) to run_bulletin.
COMPOSERS: dict[str, Callable[..., str | None]] = {"daily": daily_text, "weekly": weekly_text}
# What subscribers who get the same bulletin share: language, home market id, alerts (in order).
TextKey = tuple[str, int | None, tuple[tuple[int, int], ...]]


def _compose(
    session: so.Session,
    kind: str,
    contact: Contact,
    day: dt.date,
    policy: Policy,
    cache: QuoteCache,
    texts: dict[TextKey, Encoded | None],
    composers: Mapping[str, Callable[..., str | None]] = COMPOSERS,
) -> Encoded | None:
    """The contact's bulletin, encoded; composed once per run for everyone alike.

    A composer reads only the language, the home market and the alerts (in order), so
    subscribers who share those share the text: thousands of them, a few hundred texts.
    """
    alerts = tuple((sub.commodity_id, sub.market_id) for sub in contact.subscriptions)
    key: TextKey = (contact.language, contact.home_market_id, alerts)
    if key not in texts:
        text = composers[kind](session, contact, day, policy.max_age(), cache)
        texts[key] = None if text is None else encode_for_sms(text, contact.language)
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
    report = RunReport(market=market_code)
    if not dry_run and not _claim(db, kind, market_id, day):
        report.skipped_taken = True
        return report
    texts: set[str] = set()
    now = utcnow()
    after = 0
    cache: QuoteCache = {}
    composed: dict[TextKey, Encoded | None] = {}
    while True:
        # One transaction per batch, committed before any pause, so a crash loses at
        # most the batch in hand and other writers get their turn between batches.
        with db.session() as session:
            market = session.get_one(Market, market_id)
            contacts = _recipients(session, market, after)
            if not contacts:
                break
            after = contacts[-1].id
            sender = policy.sender_ids.get(market.country)
            capped = set() if dry_run else _capped(session, contacts, policy, now)
            queued = []
            for contact in contacts:
                encoded = _compose(session, kind, contact, day, policy, cache, composed, composers)
                if encoded is None or contact.id in capped:
                    continue
                report.messages += 1
                report.segments += encoded.segments
                report.by_language[contact.language] = report.by_language.get(contact.language, 0) + 1
                texts.add(encoded.text)
                key = f"bulletin:{kind}:{day.isoformat()}:{contact.id}"
                queued.append(
                    outbox.Queued(
                        to=contact.phone, text=encoded.text, key=key, lang=contact.language, contact_id=contact.id
                    )
                )
            if not dry_run:
                # One INSERT per batch; the keys still make a repeated run add nothing.
                outbox.enqueue_many(
                    session, queued, purpose="bulletin", sender_id=sender, not_before=policy.not_before(market, now)
                )
            if dry_run:
                session.rollback()
        if progress:
            progress(len(contacts))
        if pause:
            pause()
    report.distinct_texts = len(texts)
    if not dry_run:
        _finish(db, kind, market_id, day, report.messages)
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
