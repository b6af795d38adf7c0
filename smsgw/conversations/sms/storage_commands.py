"""STORE MAIZE [market]: has storing the harvest paid in this market's past years (table: ``router``)."""

from __future__ import annotations

from smsgw.conversations.sms.commands import Request, _default_market, _need_commodity, error_text
from smsgw.services import storage, storage_texts


def _store(request: Request) -> str:
    commodity = _need_commodity(request)
    if isinstance(commodity, str):
        return commodity
    market = _default_market(request, commodity)
    if market is None:
        return error_text(request.t, "unknown_market")
    advice = storage.advice_for(request.db, commodity, market, request.today, request.settings)
    return storage_texts.answer(request.t, advice, commodity, market)
