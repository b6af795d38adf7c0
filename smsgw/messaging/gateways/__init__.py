"""SMS gateways behind one small protocol; the drain is their only caller."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from smsgw.config import allowed_prefixes
from smsgw.messaging.outbox import SendResult
from smsgw.phones import is_mobile


class Gateway(Protocol):
    """Sends one text to many recipients in one request."""

    name: str

    def send(self, text: str, recipients: list[str], sender_id: str | None) -> list[SendResult]:
        """Send ``text`` to every recipient; one result per recipient."""
        ...


class AllowedPrefixes:
    """Sends only to mobile numbers in the configured country prefixes, whoever queued the message.

    Inbound SMS from elsewhere get no reply, but a number can also enter by USSD roaming
    or the admin; the last check before money is spent is here. A premium-rate or
    fixed-line number inside our prefixes is refused too: a reply there costs money
    (SMS pumping) and reaches no farmer. No prefixes means any country, mobiles only.
    """

    def __init__(self, inner: Gateway, prefixes: list[str]) -> None:
        self.inner = inner
        self.name = inner.name
        self.prefixes = tuple(prefixes)

    def send(self, text: str, recipients: list[str], sender_id: str | None) -> list[SendResult]:
        """Fail the recipients we must not send to (with the reason); hand the rest to the real gateway."""
        refused: list[SendResult] = []
        allowed: list[str] = []
        for phone in recipients:
            reason = self.refusal(phone)
            if reason:
                refused.append(SendResult(phone, "failed", error=reason))
            else:
                allowed.append(phone)
        return refused + (self.inner.send(text, allowed, sender_id) if allowed else [])

    def refusal(self, phone: str) -> str:
        """Why ``phone`` may not be sent to, or "" when it may."""
        if self.prefixes and not phone.startswith(self.prefixes):
            return "outside SMSGW_ALLOWED_PREFIXES"
        if not is_mobile(phone):
            return "not a mobile number (premium-rate, fixed line or invalid)"
        return ""


def build_gateway(settings: Mapping[str, Any]) -> Gateway:
    """The gateway named by SMSGW_GATEWAY, limited to mobiles (in SMSGW_ALLOWED_PREFIXES when set)."""
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
    # Always wrapped: the mobile-only rule holds even when every country is allowed.
    return AllowedPrefixes(gateway, list(allowed_prefixes(settings)))
