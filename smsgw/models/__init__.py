"""All tables, imported in one place so metadata is complete for Alembic and tests."""

from smsgw.models.access import AdminSession, SigninThrottle
from smsgw.models.audit import AuditEntry
from smsgw.models.catalog import (
    Commodity,
    CommodityAlias,
    Grade,
    GradeLimit,
    Market,
    MarketAlias,
    Unit,
    UnitAlias,
)
from smsgw.models.messaging import (
    BulletinRun,
    DeliveryReport,
    GroupMessage,
    InboundMessage,
    OutboundMessage,
    ReportCache,
    RuntimeState,
    UssdSession,
)
from smsgw.models.orders import BuyOffer, Commitment, GroupOrder, OrderPriceTier
from smsgw.models.people import (
    Buyer,
    BuyerMarket,
    Contact,
    GroupCommodity,
    Membership,
    OperatorUser,
    PriceReporter,
    ProducerGroup,
    ReporterMarket,
    Subscription,
)
from smsgw.models.prices import PriceObservation
from smsgw.models.rollouts import Rollout, RolloutUnit, RolloutWave
from smsgw.models.sales import SaleReport

__all__ = [
    "AdminSession",
    "AuditEntry",
    "BulletinRun",
    "BuyOffer",
    "Buyer",
    "BuyerMarket",
    "Commitment",
    "Commodity",
    "CommodityAlias",
    "Contact",
    "DeliveryReport",
    "Grade",
    "GradeLimit",
    "GroupCommodity",
    "GroupMessage",
    "GroupOrder",
    "InboundMessage",
    "Market",
    "MarketAlias",
    "Membership",
    "OperatorUser",
    "OrderPriceTier",
    "OutboundMessage",
    "PriceObservation",
    "PriceReporter",
    "ProducerGroup",
    "ReportCache",
    "ReporterMarket",
    "Rollout",
    "RolloutUnit",
    "RolloutWave",
    "RuntimeState",
    "SaleReport",
    "SigninThrottle",
    "Subscription",
    "Unit",
    "UnitAlias",
    "UssdSession",
]
