"""The SMS of a group order's settlement, composed in each member's language.

A statement is one SMS: what the member delivered (or received, for inputs), at what final
price, the group's fee per unit, and what that comes to. It says that smsgw keeps the
record and moves no money: the leader pays the members (or collects their costs).
"""
from __future__ import annotations

from decimal import Decimal

from smsgw.i18n import N_, Text
from smsgw.models import Commitment, Contact, GroupOrder
from smsgw.services.order_texts import crop
from smsgw.services.quantities import quantity_phrase

SELL_FEE = N_("Order %(id)s paid %(date)s: %(qty)s x %(price)s, less fee %(fee)s each: "
              "%(total)s for you. smsgw keeps the record, moves no money.")
SELL = N_("Order %(id)s paid %(date)s: %(qty)s x %(price)s: %(total)s for you. "
          "smsgw keeps the record, moves no money.")
BUY_FEE = N_("Order %(id)s: you got %(qty)s x %(price)s, plus fee %(fee)s each: "
             "%(total)s to pay. smsgw keeps the record, moves no money.")
BUY = N_("Order %(id)s: you got %(qty)s x %(price)s: %(total)s to pay. "
         "smsgw keeps the record, moves no money.")
NOTHING = N_("Order %(id)s for %(crop)s is complete. No delivery was recorded for you.")
SELL_REFERENCE = N_("Order %(id)s: your leader paid you %(total)s, ref %(ref)s. "
                    "Reply PAID %(id)s if you got it, or DISPUTE %(id)s and what is wrong.")
BUY_REFERENCE = N_("Order %(id)s: your payment of %(total)s is recorded, ref %(ref)s. "
                   "Reply PAID %(id)s if right, or DISPUTE %(id)s and what is wrong.")
DISPUTED = N_("Order %(id)s: %(name)s disputes the payment. Please call them. The operator sees it too.")


def statement(t: Text, order: GroupOrder, item: Commitment) -> str:
    """A member's statement: delivered quantity x final price, less (or plus) the fee."""
    delivered = item.delivered_quantity or Decimal(0)
    if delivered == 0 or item.payout is None or order.final_price is None:
        return t(NOTHING, id=order.id, crop=crop(order, t.lang))
    fee = order.fee_per_unit or Decimal(0)
    values = {
        "id": order.id, "qty": quantity_phrase(t, delivered, order.unit),
        "price": t.money(order.final_price, order.currency), "fee": t.money(fee, order.currency),
        "total": t.money(item.payout, order.currency),
        "date": t.date(order.paid_on) if order.paid_on else "-",
    }
    if order.kind == "sell":
        return t(SELL_FEE if fee else SELL, **values)
    return t(BUY_FEE if fee else BUY, **values)


def reference(t: Text, order: GroupOrder, item: Commitment) -> str:
    """The payment reference the leader gave, and how to confirm or dispute it."""
    values = {"id": order.id, "total": t.money(item.payout or Decimal(0), order.currency),
              "ref": item.payment_reference or "-"}
    message = SELL_REFERENCE if order.kind == "sell" else BUY_REFERENCE
    return t(message, **values)


def disputed(t: Text, order: GroupOrder, member: Contact) -> str:
    """For the leader: a member disputes their payment."""
    return t(DISPUTED, id=order.id, name=member.name or member.phone)
