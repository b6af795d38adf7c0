"""A fake Africa's Talking SMS API on 127.0.0.1, for driving the real SDK in tests.

It answers ``POST /version1/messaging`` the way AT does (HTTP 201, ``Content-Type:
application/json`` exactly, per-recipient results), and ``GET /version1/user`` (the
account's data, which sends nothing: ``{"UserData": {"balance": "KES 1234.00"}}``, 401
on a wrong key) as the SDK's ``Application.fetch_application_data`` calls it. It can be
told to fail: chosen
numbers rejected, a share of requests answering 500 or hanging past the client's
timeout, a wrong API key, or the whole service down. Failures are drawn from a seeded
generator, one draw per request, so a test sees the same run every time. It can also be
slow (``delay_seconds`` before every answer), to hold a request in flight.
"""
from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

PATH = "/version1/messaging"
USER_PATH = "/version1/user"
COST = "0.8000"
DOWN_MODES = (None, "503", "refused")


@dataclass(frozen=True)
class FakeRequest:
    """One request as the fake received it, and how it answered."""

    username: str
    api_key: str
    message: str
    recipients: tuple[str, ...]
    sender_id: str | None
    enqueue: bool
    answer: str  # "201", "401", "500", "503" or "timeout" (no answer, nothing sent)


class _Server(ThreadingHTTPServer):
    # Join handler threads on close so no socket outlives the fake.
    daemon_threads = False

    def __init__(self, port: int, fake: FakeAfricasTalking) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        """Hand the parsed form to the fake."""
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode("utf-8"), keep_blank_values=True)
        fields = {key: values[0] for key, values in form.items()}
        self.server.fake.handle(self, urlsplit(self.path).path, fields)

    def do_GET(self) -> None:
        """Hand the query string to the fake."""
        url = urlsplit(self.path)
        fields = {key: values[0] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        self.server.fake.handle_get(self, url.path, fields)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def reply(self, status: int, body: str, content_type: str) -> None:
        """Write a whole answer and close the connection."""
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client died waiting (a killed drain): AT's work is done all the same
        self.close_connection = True


class FakeAfricasTalking:
    """The fake API; use as a context manager and point the gateway at ``base_url``."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        seed: int = 0,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        hang_seconds: float = 2.0,
        fail_numbers: set[str] | None = None,
        content_type: str = "application/json",
        delay_seconds: float = 0.0,
        balance: str = "KES 1234.00",
    ) -> None:
        self.api_key = api_key
        self.balance = balance
        self.error_rate = error_rate
        self.timeout_rate = timeout_rate
        self.hang_seconds = hang_seconds
        self.fail_numbers = set(fail_numbers or ())
        self.content_type = content_type
        self.delay_seconds = delay_seconds
        self.requests: list[FakeRequest] = []
        self.deliveries: list[tuple[str, str]] = []  # (number, message) AT accepted
        self.lookups: list[tuple[str, str, str]] = []  # user-data GETs: (username, api key, answer)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._down: str | None = None
        self._port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """What to pass as the gateway's ``api_base``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def down(self) -> str | None:
        """None when up; "503" answers every request 503; "refused" stops listening."""
        return self._down

    @down.setter
    def down(self, mode: str | None) -> None:
        if mode not in DOWN_MODES:
            raise ValueError(f"down must be one of {DOWN_MODES}")
        if mode == "refused" and self._server is not None:
            self._stop_server()
        elif mode != "refused" and self._server is None and self._port:
            self._start_server(self._port)
        self._down = mode

    def start(self) -> Self:
        """Listen on a free port and serve in a background thread."""
        self._closing.clear()
        self._start_server(0)
        return self

    def close(self) -> None:
        """Stop serving, wake any hanging request and close every socket."""
        self._closing.set()
        self._stop_server()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def received(self) -> Counter[tuple[str, str]]:
        """How many times each (number, message) was accepted for delivery."""
        with self._lock:
            return Counter(self.deliveries)

    def answers(self) -> Counter[str]:
        """How many requests got each kind of answer."""
        with self._lock:
            return Counter(request.answer for request in self.requests)

    def handle(self, handler: _Handler, path: str, fields: dict[str, str]) -> None:
        """Answer one request like AT, or fail it as configured."""
        if path != PATH:
            handler.reply(404, "Not Found", "text/plain")
            return
        api_key = handler.headers.get("apiKey") or ""
        with self._lock:
            draw = self._random.random()
            if self._down == "503":
                answer = "503"
            elif api_key != self.api_key:
                answer = "401"
            elif draw < self.timeout_rate:
                answer = "timeout"
            elif draw < self.timeout_rate + self.error_rate:
                answer = "500"
            else:
                answer = "201"
            self.requests.append(_record(fields, api_key, answer))
        if self.delay_seconds and answer != "timeout":
            # A slow AT: the request is in flight, then handled as usual.
            self._closing.wait(self.delay_seconds)
        if answer == "timeout":
            # Hang before doing anything, so the timed-out request sent nothing.
            self._closing.wait(self.hang_seconds)
            handler.close_connection = True
        elif answer == "201":
            handler.reply(201, self._accept(fields), self.content_type)
        elif answer == "401":
            handler.reply(401, "The supplied authentication is invalid", "text/plain")
        elif answer == "500":
            handler.reply(500, "Internal Server Error", "text/plain")
        else:
            handler.reply(503, "Service Unavailable", "text/plain")

    def handle_get(self, handler: _Handler, path: str, fields: dict[str, str]) -> None:
        """Answer the account's user data like AT: its balance, or 401 for a wrong key."""
        if path != USER_PATH:
            handler.reply(404, "Not Found", "text/plain")
            return
        api_key = handler.headers.get("apiKey") or ""
        with self._lock:
            if self._down == "503":
                answer = "503"
            elif not fields.get("username"):
                answer = "400"
            elif api_key != self.api_key:
                answer = "401"
            else:
                answer = "200"
            self.lookups.append((fields.get("username", ""), api_key, answer))
        if self.delay_seconds:
            self._closing.wait(self.delay_seconds)
        if answer == "200":
            handler.reply(200, json.dumps({"UserData": {"balance": self.balance}}), self.content_type)
        elif answer == "400":
            handler.reply(400, "Request is missing required query parameter: username", "text/plain")
        elif answer == "401":
            handler.reply(401, "The supplied authentication is invalid", "text/plain")
        else:
            handler.reply(503, "Service Unavailable", "text/plain")

    def _accept(self, fields: dict[str, str]) -> str:
        message = fields.get("message", "")
        recipients: list[dict[str, object]] = []
        with self._lock:
            for number in _numbers(fields):
                if number in self.fail_numbers:
                    recipients.append(_entry(403, number, "InvalidPhoneNumber", "0", "None"))
                    continue
                self.deliveries.append((number, message))
                message_id = f"ATXid_{uuid.uuid4().hex}"
                recipients.append(_entry(101, number, "Success", f"KES {COST}", message_id))
        sent = sum(1 for entry in recipients if entry["statusCode"] == 101)
        total = f"KES {float(COST) * sent:.4f}"
        summary = f"Sent to {sent}/{len(recipients)} Total Cost: {total}"
        return json.dumps({"SMSMessageData": {"Message": summary, "Recipients": recipients}})

    def _start_server(self, port: int) -> None:
        self._server = _Server(port, self)
        self._port = self._server.server_address[1]
        # A short poll keeps close() quick; shutdown() waits for the next poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def _stop_server(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server, self._thread = None, None


def _entry(code: int, number: str, status: str, cost: str, message_id: str) -> dict[str, object]:
    return {
        "statusCode": code,
        "number": number,
        "status": status,
        "cost": cost,
        "messageId": message_id,
    }


def _numbers(fields: dict[str, str]) -> list[str]:
    return [number.strip() for number in fields.get("to", "").split(",") if number.strip()]


def _record(fields: dict[str, str], api_key: str, answer: str) -> FakeRequest:
    return FakeRequest(
        username=fields.get("username", ""),
        api_key=api_key,
        message=fields.get("message", ""),
        recipients=tuple(_numbers(fields)),
        sender_id=fields.get("from"),
        enqueue=fields.get("enqueue") == "1",
        answer=answer,
    )
