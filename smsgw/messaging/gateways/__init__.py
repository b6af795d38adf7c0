"""SMS gateways behind one small protocol; the drain is their only caller."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from smsgw.messaging.outbox import SendResult


class Gateway(Protocol):
    """Sends one text to many recipients in one request."""

    name: str

    def send(self, text: str, recipients: list[str], sender_id: str | None) -> list[SendResult]:
        """Send ``text`` to every recipient; one result per recipient."""
        ...


def build_gateway(settings: Mapping[str, Any]) -> Gateway:
    """The gateway named by SMSGW_GATEWAY."""
    if settings["SMSGW_GATEWAY"] == "africastalking":
        from smsgw.messaging.gateways.africastalking import AfricasTalkingGateway

        return AfricasTalkingGateway(
            username=settings["AT_USERNAME"],
            api_key=settings["AT_API_KEY"],
            api_base=settings["AT_API_BASE"] or None,
        )
    from smsgw.messaging.gateways.console import ConsoleGateway

    return ConsoleGateway()
