"""Load the demo content (``content/``) into the database; running it twice changes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from smsgw.db import utcnow
from smsgw.models import (
    Buyer,
    BuyOffer,
    Commodity,
    CommodityAlias,
    Contact,
    Grade,
    GradeLimit,
    Market,
    MarketAlias,
    Membership,
    PriceObservation,
    PriceReporter,
    ProducerGroup,
    Subscription,
    Unit,
    UnitAlias,
)
from smsgw.phones import normalize_phone
from smsgw.services import enrolment
from smsgw.services.demo_rollout import load_rollouts
from smsgw.services.demo_season import DEMO_SOURCE, Catalog, load_season

COUNTRY_FILES = ("kenya", "senegal")
# Past seasons' monthly prices (content/prices/history.csv), for "store or sell".
HISTORY_SOURCE = "demo-history"
# The daily demo series covers the last 120 days; monthly history stops before them.
HISTORY_WINDOW_DAYS = 125


def _upsert(session: so.Session, model: type, key: dict[str, Any], values: dict[str, Any]) -> Any:
    """The row matching ``key``, created or updated with ``values``."""
    row = session.scalar(sa.select(model).filter_by(**key))
    if row is None:
        row = model(**key, **values)
        session.add(row)
    else:
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
    session.flush()
    return row


def _aliases(
    session: so.Session, model: type, owner: str, owner_id: int, words: dict[str, str | None]
) -> None:
    for alias, lang in words.items():
        values: dict[str, Any] = {owner: owner_id}
        if lang is not None:
            values["lang"] = lang
        _upsert(session, model, {"alias": alias}, values)


class Seeder:
    """Reads ``content/`` and writes it through idempotent upserts."""

    def __init__(
        self,
        session: so.Session,
        content_dir: Path,
        today: dt.date,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.content = content_dir
        self.today = today
        self.progress = progress or (lambda _msg: None)
        self.units: dict[str, Unit] = {}
        self.markets: dict[str, Market] = {}
        self.commodities: dict[str, Commodity] = {}
        self.buyers: dict[str, Buyer] = {}

    def run(self) -> dict[str, int]:
        """Seed everything; return the number of price rows added."""
        self._units(tomllib.loads((self.content / "units.toml").read_text("utf-8")))
        countries = {
            name: tomllib.loads((self.content / f"{name}.toml").read_text("utf-8"))
            for name in COUNTRY_FILES
        }
        for name, data in countries.items():
            self.progress(f"catalog: {name}")
            self._country(data)
        added = 0
        if not self.session.scalar(
            sa.select(PriceObservation.id).where(PriceObservation.source == DEMO_SOURCE).limit(1)
        ):
            for name in COUNTRY_FILES:
                self.progress(f"price history: {name}")
                added += self._prices(
                    self.content / "prices" / f"{name}.csv", countries[name]["currency"]
                )
        history = self.content / "prices" / "history.csv"
        if history.exists() and not self.session.scalar(
            sa.select(PriceObservation.id).where(PriceObservation.source == HISTORY_SOURCE).limit(1)
        ):
            self.progress("past seasons' prices")
            added += self._history(history)
        sales = load_season(
            self.session, self.content, self.today, Catalog(self.units, self.commodities, self.buyers),
            self.progress,
        )
        sales += load_rollouts(self.session, self.content, self.today, self.progress)
        return {"prices_added": added, "sales_added": sales}

    def _units(self, data: dict[str, Any]) -> None:
        for item in data["unit"]:
            unit = _upsert(
                self.session,
                Unit,
                {"code": item["code"]},
                {
                    "base": item["base"],
                    "factor": decimal.Decimal(item["factor"]),
                    "names": item["names"],
                },
            )
            _aliases(
                self.session, UnitAlias, "unit_id", unit.id, {a: None for a in item["aliases"]}
            )
            self.units[unit.code] = unit

    def _country(self, data: dict[str, Any]) -> None:
        for item in data["market"]:
            market = _upsert(
                self.session,
                Market,
                {"code": item["code"]},
                {
                    "name": item["name"],
                    "short_name": item["short"],
                    "country": data["country"],
                    "region": item.get("region", ""),
                    "timezone": data["timezone"],
                    "currency": data["currency"],
                    "latitude": decimal.Decimal(str(item["latitude"])).quantize(
                        decimal.Decimal("0.000001")
                    ),
                    "longitude": decimal.Decimal(str(item["longitude"])).quantize(
                        decimal.Decimal("0.000001")
                    ),
                    "bulletin_hour": item.get("bulletin_hour", 6),
                },
            )
            _aliases(
                self.session,
                MarketAlias,
                "market_id",
                market.id,
                {a: None for a in item["aliases"]},
            )
            self.markets[market.code] = market
        for item in data["commodity"]:
            commodity = _upsert(
                self.session,
                Commodity,
                {"code": item["code"]},
                {
                    "kind": item["kind"],
                    "default_unit_id": self.units[item["default_unit"]].id,
                    "names": item["names"],
                    "short_names": item["short"],
                },
            )
            words = {alias: lang for lang, aliases in item["aliases"].items() for alias in aliases}
            _aliases(self.session, CommodityAlias, "commodity_id", commodity.id, words)
            self.commodities[commodity.code] = commodity
        for item in data.get("grade", []):
            self._grade(item)
        for item in data.get("buyer", []):
            self._buyer(item, data)
        for item in data.get("offer", []):
            self._offer(item, data["currency"])
        contacts = {}
        for item in data.get("contact", []):
            contacts[item["phone"]] = self._contact(item)
        for item in data.get("group", []):
            self._group(item, contacts)
        for item in data.get("reporter", []):
            self._reporter(item, contacts)

    def _grade(self, item: dict[str, Any]) -> None:
        commodity = self.commodities[item["commodity"]]
        grade = self.session.scalar(
            sa.select(Grade).where(
                Grade.commodity_id == commodity.id,
                Grade.buyer_id.is_(None),
                Grade.code == item["code"],
            )
        )
        values = {
            "rank": item["rank"],
            "standard": item["standard"],
            "price_diff_pct": decimal.Decimal(item["price_diff_pct"]),
            "requirements": item["requirements"],
        }
        if grade is None:
            grade = Grade(commodity_id=commodity.id, code=item["code"], **values)
            self.session.add(grade)
        else:
            for name, value in values.items():
                if getattr(grade, name) != value:
                    setattr(grade, name, value)
        self.session.flush()
        for limit in item.get("limits", []):
            _upsert(
                self.session,
                GradeLimit,
                {"grade_id": grade.id, "parameter": limit["parameter"]},
                {
                    "min_value": _dec(limit.get("min")),
                    "max_value": _dec(limit.get("max")),
                    "unit": limit.get("unit", "%"),
                },
            )

    def _buyer(self, item: dict[str, Any], data: dict[str, Any]) -> None:
        """A buyer or supplier with its country, currency, markets and the contact that
        speaks for it (created with the buyer's language when the phone is new)."""
        phone = normalize_phone(item["phone"])
        market = self.markets[item["market"]]
        contact = self.session.scalar(sa.select(Contact).where(Contact.phone == phone))
        if contact is None:
            contact = Contact(
                phone=phone, name=item["name"][:80], language=item.get("language", "en"),
                language_chosen=True, home_market_id=market.id, consent="granted", consented_at=utcnow(),
            )
            self.session.add(contact)
            self.session.flush()
        buyer = _upsert(
            self.session,
            Buyer,
            {"code": item["code"]},
            {
                "name": item["name"],
                "kind": item["kind"],
                "phone": phone,
                "market_id": market.id,
                "country": data["country"],
                "currency": data["currency"],
                "contact_id": contact.id,
            },
        )
        for code in item.get("markets", [item["market"]]):
            if self.markets[code] not in buyer.markets:
                buyer.markets.append(self.markets[code])
        self.session.flush()
        self.buyers[item["code"]] = buyer

    def _offer(self, item: dict[str, Any], currency: str) -> None:
        buyer = self.buyers[item["buyer"]]
        commodity = self.commodities[item["commodity"]]
        grade = (
            self.session.scalar(
                sa.select(Grade).where(
                    Grade.commodity_id == commodity.id, Grade.code == item["grade"]
                )
            )
            if item.get("grade")
            else None
        )
        key = {
            "buyer_id": buyer.id,
            "commodity_id": commodity.id,
            "delivery_place": item["delivery_place"],
        }
        if self.session.scalar(sa.select(BuyOffer.id).filter_by(**key)):
            return
        self.session.add(
            BuyOffer(
                **key,
                grade_id=grade.id if grade else None,
                quantity=decimal.Decimal(item["quantity"]),
                unit_id=self.units[item["unit"]].id,
                price=decimal.Decimal(item["price"]),
                currency=currency,
                kind="supply" if buyer.kind == "supplier" else "buy",
                market_id=buyer.market_id,
                window_start=self.today,
                window_end=self.today + dt.timedelta(days=item["window_days"]),
            )
        )
        self.session.flush()

    def _contact(self, item: dict[str, Any]) -> Contact:
        phone = normalize_phone(item["phone"])
        existing = self.session.scalar(sa.select(Contact).where(Contact.phone == phone))
        if existing is not None:
            return existing
        now = utcnow()
        contact = Contact(
            phone=phone,
            name=item["name"],
            language=item["language"],
            language_chosen=True,
            home_market_id=self.markets[item["home_market"]].id,
            village=item.get("village", ""),
            consent="granted",
            consented_at=now,
            # The content says when the operator enrolled each demo farmer.
            enrolled_at=now - dt.timedelta(days=item.get("enrolled_days_ago", 0)),
            enrolment_source="operator",
        )
        self.session.add(contact)
        self.session.flush()
        for sub in item.get("subscriptions", []):
            self.session.add(
                Subscription(
                    contact_id=contact.id,
                    commodity_id=self.commodities[sub["commodity"]].id,
                    market_id=self.markets[sub["market"]].id,
                )
            )
        self.session.flush()
        return contact

    def _group(self, item: dict[str, Any], contacts: dict[str, Contact]) -> None:
        group = _upsert(
            self.session,
            ProducerGroup,
            {"code": item["code"]},
            {
                "name": item["name"],
                "village": item.get("village", ""),
                "market_id": self.markets[item["market"]].id,
            },
        )
        wanted = [self.commodities[code] for code in item.get("commodities", [])]
        for commodity in wanted:
            if commodity not in group.commodities:
                group.commodities.append(commodity)
        for member in item.get("members", []):
            contact = contacts[member["phone"]]
            _upsert(
                self.session,
                Membership,
                {"group_id": group.id, "contact_id": contact.id},
                {"role": member["role"]},
            )
            enrolment.enrol(self.session, contact, "group")

    def _reporter(self, item: dict[str, Any], contacts: dict[str, Contact]) -> None:
        contact = contacts[item["phone"]]
        reporter = _upsert(
            self.session,
            PriceReporter,
            {"contact_id": contact.id},
            {"trusted": item.get("trusted", False)},
        )
        for code in item.get("markets", []):
            if self.markets[code] not in reporter.markets:
                reporter.markets.append(self.markets[code])
        self.session.flush()

    def _price_row(self, row: dict[str, str], day: dt.date, currency: str, source: str) -> dict[str, Any]:
        """One approved price observation from a content file's row, dated ``day``."""
        unit = self.units[row["unit"]]
        amount = decimal.Decimal(row["price"])
        return {
            "commodity_id": self.commodities[row["commodity"]].id,
            "market_id": self.markets[row["market"]].id,
            "observed_on": day,
            "amount": amount,
            "unit_id": unit.id,
            "currency": currency,
            "price_per_base": (amount / unit.factor).quantize(decimal.Decimal("0.000001")),
            "kind": row["kind"],
            "source": source,
            "source_ref": f"{row['market']}:{row['commodity']}:{row['kind']}:{day.isoformat()}",
            "status": "approved",
            "created_at": utcnow(),
        }

    def _prices(self, path: Path, currency: str) -> int:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [
                self._price_row(row, self.today - dt.timedelta(days=int(row["days_ago"])), currency, DEMO_SOURCE)
                for row in csv.DictReader(handle)
            ]
        self.session.execute(sa.insert(PriceObservation), rows)
        return len(rows)

    def _history(self, path: Path) -> int:
        """Monthly prices of past seasons (dated the 15th), before the daily history's window."""
        window = self.today - dt.timedelta(days=HISTORY_WINDOW_DAYS)
        rows = []
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                day = dt.date(self.today.year - int(row["years_ago"]), int(row["month"]), 15)
                if day < window:  # the daily series covers the rest
                    rows.append(self._price_row(row, day, self.markets[row["market"]].currency, HISTORY_SOURCE))
        if rows:
            self.session.execute(sa.insert(PriceObservation), rows)
        return len(rows)


def _dec(value: Any) -> decimal.Decimal | None:
    return None if value is None else decimal.Decimal(str(value))


def seed_demo(
    session: so.Session,
    content_dir: Path,
    today: dt.date,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Seed the demo content into ``session`` (the caller commits)."""
    return Seeder(session, content_dir, today, progress).run()
