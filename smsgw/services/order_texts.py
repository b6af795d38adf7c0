"""The SMS a group order sends its members, composed in each member's language."""
from __future__ import annotations

import decimal
from decimal import Decimal
from zoneinfo import ZoneInfo

from smsgw.i18n import Text
from smsgw.models import Commitment, GroupOrder, Unit
from smsgw.services.quantities import quantity_phrase

CENTS = Decimal("0.01")
# The USSD code members dial (group orders are item 3 of its menu).
USSD_CODE = "*384#"


def quantity(t: Text, value: Decimal, most: int = 3) -> str:
    """A quantity with only the decimals it needs, at most ``most``: 200, 2.5, 0.125."""
    value = value.quantize(Decimal(1).scaleb(-most), decimal.ROUND_HALF_UP)
    exponent = value.normalize().as_tuple().exponent
    return t.number(value, max(0, -exponent) if isinstance(exponent, int) else 0)


def tenths(value: Decimal) -> Decimal:
    """A group figure as it is said: one decimal at most (16.1, not 16.111)."""
    return value.quantize(Decimal("0.1"), decimal.ROUND_HALF_UP)


def in_order_unit(t: Text, order: GroupOrder, value: Decimal) -> str:
    """``16.1 bags of 90 kg``: a group figure in the order's unit."""
    return quantity_phrase(t, tenths(value), order.unit)


def of_crop(t: Text, order: GroupOrder, value: Decimal, unit: Unit | None = None) -> str:
    """``500 bags of 90 kg of maize G1``: a quantity of the order's crop, with its grade."""
    phrase = quantity_phrase(t, value, unit or order.unit, order.commodity)
    return f"{phrase} {order.grade.code}" if order.grade else phrase


def crop(order: GroupOrder, lang: str) -> str:
    """The order's crop, with its grade when it has one (``Maize G1``)."""
    name = order.commodity.name(lang)
    return f"{name} {order.grade.code}" if order.grade else name


def announcement(t: Text, order: GroupOrder) -> str:
    """A new order, for the group's other members: what, how much, price, until when."""
    zone = ZoneInfo(order.group.market.timezone if order.group.market else "UTC")
    values = {"id": order.id, "qty": of_crop(t, order, order.target_quantity),
              "date": t.date(order.deadline.astimezone(zone).date()), "ussd": USSD_CODE}
    if order.kind == "sell":
        head = t("New group order %(id)s: we sell %(qty)s.", **values)
        tail = t("Commit by %(date)s: send JOIN %(id)s 10 (your quantity) or dial %(ussd)s.", **values)
    else:
        head = t("New group order %(id)s: we buy %(qty)s.", **values)
        tail = t("Order by %(date)s: send JOIN %(id)s 10 (your quantity) or dial %(ussd)s.", **values)
    short = t("By %(date)s: JOIN %(id)s 10 or %(ussd)s", **values)
    if order.price_tiers:
        best = order.price_tiers[-1]
        price = t("Price %(price)s each from %(qty)s.", qty=quantity(t, best.min_quantity),
                  price=t.money(best.unit_price, order.currency))
    elif order.price is not None:
        price = t("Price %(price)s each.", price=t.money(order.price, order.currency))
    else:
        price = ""
    # How to commit is always said: the short form when the long one would not fit one SMS
    # (with room for order numbers a few digits longer).
    text = " ".join(part for part in (head, price, tail) if part)
    if len(text) > 150:
        text = " ".join(part for part in (head, price, short) if part)
    return text


def receipt(t: Text, order: GroupOrder, msgid: str, amount: Decimal, unit: Unit) -> str:
    """A member's receipt for a commitment or withdrawal (``msgid``), with the group total."""
    return t(msgid, id=order.id, qty=of_crop(t, order, amount, unit), total=quantity(t, order.committed_total, 1),
             target=in_order_unit(t, order, order.target_quantity))


def closed(t: Text, order: GroupOrder, item: Commitment) -> str:
    """The order is closed: the group total and the member's part."""
    return t("Order %(id)s closed: group total %(total)s. Your part: %(qty)s. Your leader will arrange delivery.",
             id=order.id, total=of_crop(t, order, tenths(order.committed_total)),
             qty=quantity_phrase(t, item.quantity, item.unit))


def cancelled(t: Text, order: GroupOrder, item: Commitment) -> str:
    """The leader cancelled the order: the member's quantity is free again."""
    return t("Order %(id)s for %(crop)s is cancelled by the group leader. "
             "Your commitment of %(qty)s is no longer part of a group order.",
             id=order.id, crop=crop(order, t.lang), qty=quantity_phrase(t, item.quantity, item.unit))


def fulfilment(t: Text, order: GroupOrder, item: Commitment) -> str:
    """The order is settled: what the member delivered or received, at what price."""
    amount, price = item.delivered_quantity or Decimal(0), order.final_price or Decimal(0)
    if amount == 0:
        return t("Order %(id)s for %(crop)s is complete. No delivery was recorded for you.",
                 id=order.id, crop=crop(order, t.lang))
    values = {
        "id": order.id, "qty": of_crop(t, order, amount), "price": t.money(price, order.currency),
        "total": t.money((amount * price).quantize(CENTS), order.currency),
    }
    if order.kind == "sell":
        return t("Order %(id)s done: you delivered %(qty)s at %(price)s each. "
                 "Total: %(total)s.", **values)
    return t("Order %(id)s done: you received %(qty)s at %(price)s each. "
             "Total: %(total)s.", **values)
