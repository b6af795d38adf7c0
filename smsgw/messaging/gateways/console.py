"""The development gateway: prints each SMS to the terminal and reports it sent."""
from __future__ import annotations

import sys
import uuid
from typing import TextIO

from smsgw.messaging.outbox import SendResult


class ConsoleGateway:
    """Prints instead of sending; the outbox row is marked sent like any other."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, text: str, recipients: list[str], sender_id: str | None) -> list[SendResult]:
        """Print one block per request and return a fake message id per recipient."""
        stream = self.stream or sys.stdout
        print(f"--- SMS to {', '.join(recipients)} ---\n{text}\n", file=stream, flush=True)
        return [
            SendResult(phone=phone, outcome="sent", message_id=f"console-{uuid.uuid4().hex[:12]}")
            for phone in recipients
        ]
