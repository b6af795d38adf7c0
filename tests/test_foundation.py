"""The foundation's contracts: config, database, migrations, seed, app factory."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from smsgw import create_app
from smsgw.config import PROJECT_ROOT, ConfigError, load_settings
from smsgw.db import Base
from smsgw.models import Contact, PriceObservation
from smsgw.scheduler import JOBSTORE_TABLE
from smsgw.services.seeding import seed_demo


def test_models_and_migrations_agree(connection: sa.Connection) -> None:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "include_name": lambda name, kind, _p: name != JOBSTORE_TABLE},
    )
    assert compare_metadata(context, Base.metadata) == []


def _counts(session) -> dict[str, int]:
    return {
        name: session.scalar(sa.select(sa.func.count()).select_from(table))
        for name, table in Base.metadata.tables.items()
    }


def test_seed_twice_changes_nothing(session) -> None:
    before = _counts(session)
    assert before["price_observation"] > 3000 and before["contact"] >= 18
    seed_demo(session, PROJECT_ROOT / "content", dt.date.today())
    session.flush()
    assert _counts(session) == before


def test_seeded_prices_are_normalised_per_kg(session) -> None:
    row = session.scalars(
        sa.select(PriceObservation).where(PriceObservation.kind == "wholesale").limit(1)
    ).one()
    assert abs(row.price_per_base - row.amount / row.unit.factor) < Decimal("0.000001")
    assert row.status == "approved"


def test_production_refuses_to_start_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("WEBHOOK_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY and WEBHOOK_TOKEN"):
        create_app({"SMSGW_ENV": "production"})


def test_production_starts_with_secrets(database_url: str) -> None:
    app = create_app(
        {
            "SMSGW_ENV": "production",
            "SECRET_KEY": "s" * 32,
            "WEBHOOK_TOKEN": "t" * 24,
            "DATABASE_URL": database_url,
        }
    )
    assert app.config["SMSGW_ENV"] == "production"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "DATABASE_URL is not a database URL"),
        ("nosuchdb://x/y", "unknown database"),
    ],
)
def test_bad_database_url_is_one_clear_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"DATABASE_URL": url})


def test_sessions_roll_back_between_tests_part_one(session) -> None:
    session.add(Contact(phone="+254799999991", language="en"))
    session.commit()
    assert session.scalar(sa.select(Contact).where(Contact.phone == "+254799999991"))


def test_sessions_roll_back_between_tests_part_two(session) -> None:
    assert session.scalar(sa.select(Contact).where(Contact.phone == "+254799999991")) is None


def test_contact_phone_must_be_e164(session) -> None:
    session.add(Contact(phone="0712345678", language="en"))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_money_is_numeric_not_float() -> None:
    column = Base.metadata.tables["price_observation"].c.amount
    assert isinstance(column.type, sa.Numeric) and not isinstance(column.type, sa.Float)
