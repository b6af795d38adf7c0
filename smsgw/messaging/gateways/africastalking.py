"""Africa's Talking through its official SDK: one request per text, one result per recipient.

The SDK answers a 2xx with the parsed JSON only when the Content-Type is exactly
``application/json`` (otherwise the raw text), raises ``AfricasTalkingException(body)``
for any other status, and lets ``requests`` exceptions through for network trouble.

What the public interface gives is used as is: ``SMSService.send`` with ``sender_id``,
``enqueue`` and ``timeout``, ``validate_phone``, ``AfricasTalkingException``. Two things
we need it cannot do, so this module (and ``smsgw doctor``, through the helpers below)
reaches into the SDK's private parts, and only here:

- Another host (``AT_API_BASE``: a local fake in tests, a proxy). The SDK fixes its hosts
  in ``Service.__init__`` and ``_init_service`` (api.africastalking.com, or the sandbox's
  for the username ``sandbox``) with no argument or setting to change them; every URL is
  ``_baseUrl`` (or ``_contentUrl``) + path, so ``point_at`` rewrites those two attributes.
- The HTTP status of a refused request. ``AfricasTalkingException`` carries the body only,
  in the synchronous and the callback form alike, so a refused API key (401/403: pause
  sending until the operator fixes it) looks the same as an outage (5xx: retry). The
  response object is visible only inside the name-mangled static helpers
  ``Service.__make_post_request`` / ``__make_get_request``, so ``record_status`` wraps the
  one of a service instance (an instance attribute wins over the class's).
- One HTTP session for every request. The helpers call ``requests.post`` / ``get``, which
  build a new ``requests.Session`` and connection for each call (a new TLS handshake with
  AT each time) and read the environment's proxy settings again; the gateway's wrapper
  sends the same request through a session of its own that keeps the connection open,
  with those settings read once (and no cookies, as the SDK's one-off sessions).

Both were written against africastalking ``SDK_VERSION``; pyproject.toml pins exactly that
release and ``tests/test_gateway_sdk.py`` fails on any other, so an upgrade is a decision
made by re-reading ``Service.py`` and this module, not a silent change.
"""
from __future__ import annotations

import http.cookiejar
import logging
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import africastalking
import requests
from africastalking.Service import DEFAULT_TIMEOUT_S, AfricasTalkingException, validate_phone

from smsgw.messaging.outbox import SendResult
from smsgw.phones import mask_phone

log = logging.getLogger(__name__)

Timeout = float | tuple[float, float]

SENT_CODES = frozenset({100, 101, 102})  # Processed, Sent, Queued
# Risk hold, bad number, blacklisted, unroutable, do-not-disturb: this recipient would
# fail again, the others may not.
PERMANENT_CODES = frozenset({401, 403, 404, 406, 407, 409})
# InvalidSenderId, InsufficientBalance: every message would be refused until the
# operator fixes the setting or tops up, so sending pauses (no attempt spent).
ACCOUNT_CODES = frozenset({402, 405})
# A bad key or a refused account will not fix itself between retries: sending pauses.
ACCOUNT_HTTP = frozenset({401, 403})
# AT's Message when it took no recipient at all because of the account or sender id.
ACCOUNT_MESSAGES = ("InvalidSenderId", "InsufficientBalance")
# For big requests AT may queue on its side and answer before the telcos do, so the
# drain is not held by one slow bulk send.
ENQUEUE_FROM = 100
ERROR_CHARS = 200


# The africastalking release the private hooks below were written for (see the docstring).
SDK_VERSION = "2.0.3"


def point_at(service: Any, api_base: str) -> None:
    """Send ``service``'s requests to ``api_base`` instead of AT's host (private attributes).

    After the SDK's set-up every service's ``_baseUrl`` is the host plus its own prefix
    (``/version1`` for SMS and the application's user data), and SMS's ``_contentUrl`` the same.
    """
    base = api_base.rstrip("/") + "/version1"
    service._baseUrl = base
    if hasattr(service, "_contentUrl"):
        service._contentUrl = base


class _StatusRecorder:
    """Wraps one of the SDK's request helpers to keep the HTTP status its exception drops.

    With a ``session``, the request goes through it, as the helper would send it, instead
    of the helper's one-off ``requests.post`` / ``get``.
    """

    def __init__(
        self, request: Callable[..., Any], method: str = "post", session: requests.Session | None = None
    ) -> None:
        self._request = request
        self._method = method
        self._session = session
        self._local = threading.local()

    def __call__(
        self,
        url: str,
        headers: Any,
        data: Any,
        params: Any,
        callback: Any = None,
        timeout: Timeout = DEFAULT_TIMEOUT_S,
    ) -> Any:
        """Make the helper's request and note the status of its response."""
        self._local.status = None
        if self._session is None:
            response = self._request(url, headers, data, params, callback, timeout)
        else:
            response = self._session.request(
                self._method, url, headers=headers, params=params, data=data, timeout=timeout
            )
            if callback is not None and callback != {}:
                # The helper's callback form: the callback gets the response, the caller None.
                self._local.status = response.status_code
                callback(response)
                return None
        self._local.status = getattr(response, "status_code", None)
        return response

    @property
    def status(self) -> int | None:
        """The HTTP status of this thread's last request, if it got one."""
        return getattr(self._local, "status", None)


def record_status(
    service: Any, method: str = "post", session: requests.Session | None = None
) -> _StatusRecorder | None:
    """Wrap ``service``'s private POST (or GET) helper; None if this SDK has no such helper.

    ``session``: send the helper's requests through it (see ``_StatusRecorder``).
    """
    attribute = f"_Service__make_{method}_request"
    request = getattr(service, attribute, None)
    if not callable(request):
        return None
    recorder = _StatusRecorder(request, method, session)
    setattr(service, attribute, recorder)
    return recorder


class AfricasTalkingGateway:
    """Sends bulk SMS with ``africastalking.SMS.send`` (synchronous, never the callback thread)."""

    name = "africastalking"

    def __init__(
        self,
        username: str,
        api_key: str,
        api_base: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT_S,
        default_sender: str | None = None,
    ) -> None:
        with warnings.catch_warnings():
            # initialize() builds every service; the WhatsApp one warns on each sandbox
            # start although we only send SMS.
            warnings.filterwarnings("ignore", "Sandbox is currently not available", UserWarning)
            africastalking.initialize(username, api_key)
        # initialize() rebinds module globals; keep our own service so a second gateway
        # with other credentials cannot swap it under us.
        self._sms = africastalking.SMS
        if api_base:
            point_at(self._sms, api_base)
        self.timeout = timeout
        # AT_SENDER_ID: for messages queued without a sender id of their own (replies,
        # order news); bulletins carry their country's from SMSGW_SENDER_IDS.
        self.default_sender = default_sender or None
        self._http = _session_for(self._sms._make_url("/messaging"))
        # Without the status (an SDK without the private helper) every HTTP error is retried.
        self._recorder = record_status(self._sms, "post", self._http)

    def send(self, text: str, recipients: list[str], sender_id: str | None) -> list[SendResult]:
        """Send ``text`` to every recipient in one request; one result per recipient."""
        # The SDK rejects the whole request for one number without its +.
        valid: list[str] = []
        results: list[SendResult] = []
        for phone in recipients:
            if validate_phone(phone):
                valid.append(phone)
            else:
                results.append(SendResult(phone, "failed", error="not an E.164 number"))
        if valid:
            results.extend(self._request(text, valid, sender_id))
        return results

    def _request(self, text: str, recipients: list[str], sender_id: str | None) -> list[SendResult]:
        try:
            answer = self._sms.send(
                text,
                recipients,
                sender_id=sender_id or self.default_sender,
                enqueue=len(recipients) >= ENQUEUE_FROM,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            log.warning("africastalking: %s for %d recipients", type(exc).__name__, len(recipients))
            # A read timeout means AT may have taken the request: the outbox decides,
            # per purpose, whether that is worth the risk of a duplicate.
            outcome = "maybe" if isinstance(exc, requests.ReadTimeout) else "retry"
            return _for_all(recipients, outcome, f"{type(exc).__name__}: {exc}")
        except AfricasTalkingException as exc:
            status = self._recorder.status if self._recorder else None
            outcome = "pause" if status in ACCOUNT_HTTP else "retry"
            log.warning("africastalking: HTTP %s for %d recipients", status, len(recipients))
            return _for_all(recipients, outcome, f"HTTP {status or '?'}: {exc}")
        if not isinstance(answer, Mapping):
            log.warning("africastalking: answer was not JSON for %d recipients", len(recipients))
            return _for_all(recipients, "retry", f"unexpected answer: {answer}")
        return _per_recipient(answer, recipients)


def _session_for(url: str) -> requests.Session:
    """An HTTP session for requests to ``url``: kept-alive connections, no cookies, and the
    environment's proxy and CA settings read once (``requests`` reads them on every call).
    """
    session = requests.Session()
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    found = session.merge_environment_settings(url, {}, None, True, None)  # verify: the CA bundle or True
    session.proxies, session.verify = found["proxies"], found["verify"]
    session.trust_env = False
    return session


def _for_all(recipients: list[str], outcome: str, error: str) -> list[SendResult]:
    return [SendResult(phone, outcome, error=error[:ERROR_CHARS]) for phone in recipients]


def _per_recipient(answer: Mapping[str, Any], recipients: list[str]) -> list[SendResult]:
    data = answer.get("SMSMessageData")
    if not isinstance(data, Mapping):
        return _for_all(recipients, "retry", f"unexpected answer: {answer}")
    entries = data.get("Recipients")
    if not isinstance(entries, list):
        return _for_all(recipients, "retry", f"unexpected answer: {answer}")
    wanted = set(recipients)
    found: dict[str, SendResult] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        number = str(entry.get("number", ""))
        if number in wanted and number not in found:
            found[number] = _result(number, entry)
    # With no recipients at all AT puts the reason (e.g. InvalidSenderId) in Message.
    reason = str(data.get("Message", ""))
    missing_outcome = "pause" if not found and any(word in reason for word in ACCOUNT_MESSAGES) else "retry"
    missing = f"not in the answer: {reason}".strip()[:ERROR_CHARS]
    results = [found.get(p) or SendResult(p, missing_outcome, error=missing) for p in recipients]
    for result in results:
        if result.outcome != "sent":
            log.info(
                "africastalking: %s %s (%s)", mask_phone(result.phone), result.outcome, result.error
            )
    return results


def _result(number: str, entry: Mapping[str, Any]) -> SendResult:
    code = _code(entry.get("statusCode"))
    if code in SENT_CODES:
        # AT writes the string "None" where there is no id.
        message_id = str(entry.get("messageId") or "None")
        cost = str(entry.get("cost") or "")
        return SendResult(
            number,
            "sent",
            message_id=None if message_id == "None" else message_id,
            cost=cost or None,
        )
    outcome = "failed" if code in PERMANENT_CODES else "pause" if code in ACCOUNT_CODES else "retry"
    error = f"{code if code is not None else '?'} {entry.get('status', '')}".strip()
    return SendResult(number, outcome, error=error[:ERROR_CHARS])


def _code(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
