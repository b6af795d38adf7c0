"""Words for stored codes (statuses, kinds, roles) in the operator's language."""
from __future__ import annotations

from wtforms import SelectChoice

from smsgw.web.admin.i18n import LazyText, tr_l

LABELS: dict[str, dict[str, LazyText]] = {
    "price_status": {"pending": tr_l("pending"), "approved": tr_l("approved"), "rejected": tr_l("rejected")},
    "price_kind": {"wholesale": tr_l("wholesale"), "retail": tr_l("retail"), "farm_gate": tr_l("farm gate")},
    "outbox": {
        "queued": tr_l("queued"),
        "sending": tr_l("sending"),
        "sent": tr_l("sent"),
        "delivered": tr_l("delivered"),
        "failed": tr_l("failed"),
        "unknown": tr_l("unknown"),
        "simulated": tr_l("simulated (not sent)"),
    },
    "purpose": {
        "reply": tr_l("reply"),
        "receipt": tr_l("receipt"),
        "order": tr_l("order news"),
        "bulletin": tr_l("bulletin"),
        "alert": tr_l("alert"),
    },
    "consent": {"unknown": tr_l("not asked"), "granted": tr_l("granted"), "withdrawn": tr_l("opted out (STOP)")},
    "order_status": {
        "open": tr_l("open"),
        "closed": tr_l("closed"),
        "fulfilled": tr_l("fulfilled"),
        "cancelled": tr_l("cancelled"),
        "draft": tr_l("draft (price to confirm)"),
        "pending": tr_l("waiting for the buyer's confirmation"),
        "withdrawn": tr_l("withdrawn"),
    },
    "order_kind": {"sell": tr_l("group sale"), "buy": tr_l("group purchase")},
    "role": {"viewer": tr_l("viewer"), "operator": tr_l("operator"), "admin": tr_l("admin")},
    "membership": {"member": tr_l("member"), "leader": tr_l("leader")},
    "bulletin": {"daily": tr_l("daily prices"), "weekly": tr_l("weekly buyers")},
    "state": {
        "improving": tr_l("improving"),
        "worsening": tr_l("worsening"),
        "no detectable change": tr_l("no detectable change"),
        "insufficient data": tr_l("insufficient data"),
    },
    "indicator": {
        "price_share": tr_l("Farmer price share (price received / reference wholesale price)"),
        "log_discount": tr_l("Discount to the reference price (log)"),
        "net_share": tr_l("Price share net of transport"),
        "pass_through": tr_l("Pass-through of reference price changes"),
        "buyer_hhi": tr_l("Concentration of buyers (HHI)"),
        "dispersion_cv": tr_l("Price dispersion across markets (CV)"),
        "enrolment_effect": tr_l("Effect of enrolment on price share"),
        "group_premium_reference": tr_l("Group orders: premium over the reference"),
        "group_premium_members": tr_l("Group orders: premium over members' own sales"),
        "group_delivery_rate": tr_l("Group orders: share delivered"),
        "group_volume_share": tr_l("Share of volume sold through group orders"),
        "active_subscribers": tr_l("Active subscribers"),
        "message_delivery_rate": tr_l("SMS delivery rate"),
        "informed_sales": tr_l("Sales made after a price look-up"),
        "sale_reporting_rate": tr_l("Farmers reporting sales"),
        "ussd_dropoff": tr_l("USSD sessions abandoned"),
    },
}


def label(group: str, value: str | None) -> str:
    """The operator's word for ``value`` of ``group``; the code itself if none is known."""
    if value is None:
        return ""
    found = LABELS.get(group, {}).get(value)
    return str(found) if found is not None else value


def choices(group: str, *, blank: str | None = None) -> list[SelectChoice]:
    """Options of a select box for ``group``, after a ``blank`` one (no filter) if given."""
    first = [SelectChoice("", blank)] if blank is not None else []
    return first + [SelectChoice(code, str(word)) for code, word in LABELS[group].items()]
