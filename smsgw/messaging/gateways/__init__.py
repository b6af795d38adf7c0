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


class AllowedPrefixes:
    """Sends only to numbers in the configured country prefixes, whoever queued the message.

    Inbound SMS from elsewhere get no reply, but a number can also enter by USSD roaming
    or the admin; the last check before money is spent is here.
    """

    def __init__(self, inner: Gateway, prefixes: list[str]) -> None:
        self.inner = inner
        self.name = inner.name
        self.prefixes = tuple(prefixes)

    def send(self, text: str, recipients: list[str], sender_id: str | None) -> list[SendResult]:
        """Fail the recipients outside the prefixes; hand the rest to the real gateway."""
        allowed = [phone for phone in recipients if phone.startswith(self.prefixes)]
        refused = [
            SendResult(phone, "failed", error="outside SMSGW_ALLOWED_PREFIXES")
            for phone in recipients
            if not phone.startswith(self.prefixes)
        ]
        return refused + (self.inner.send(text, allowed, sender_id) if allowed else [])


def build_gateway(settings: Mapping[str, Any]) -> Gateway:
    """The gateway named by SMSGW_GATEWAY, limited to SMSGW_ALLOWED_PREFIXES when set."""
    gateway: Gateway
    if settings["SMSGW_GATEWAY"] == "africastalking":
        from smsgw.messaging.gateways.africastalking import AfricasTalkingGateway

        gateway = AfricasTalkingGateway(
            username=settings["AT_USERNAME"],
            api_key=settings["AT_API_KEY"],
            api_base=settings["AT_API_BASE"] or None,
            default_sender=settings.get("AT_SENDER_ID") or None,
        )
    else:
        from smsgw.messaging.gateways.console import ConsoleGateway

        gateway = ConsoleGateway()
    prefixes = [p.strip() for p in str(settings.get("SMSGW_ALLOWED_PREFIXES", "")).split(",") if p.strip()]
    return AllowedPrefixes(gateway, prefixes) if prefixes else gateway
