"""The africastalking SDK is the release whose private parts the gateway was written for.

``smsgw.messaging.gateways.africastalking`` sets the SDK's ``_baseUrl`` / ``_contentUrl``
(AT_API_BASE) and wraps its name-mangled request helpers (the HTTP status): a different
release may rename either without notice. These tests fail on any other version, and check
the private parts are where the module expects them.
"""
from __future__ import annotations

import importlib.metadata
import inspect
import re
import tomllib

import africastalking
from africastalking.Application import ApplicationService
from africastalking.Service import Service
from africastalking.SMS import SMSService

from smsgw.config import PROJECT_ROOT
from smsgw.messaging.gateways import africastalking as gateway


def test_the_installed_sdk_is_the_one_the_gateway_was_written_for() -> None:
    installed = importlib.metadata.version("africastalking")
    assert installed == gateway.SDK_VERSION, (
        f"africastalking {installed} is installed, the gateway's private hooks were written for "
        f"{gateway.SDK_VERSION}: re-read africastalking/Service.py, then update SDK_VERSION and the pin"
    )


def test_pyproject_pins_exactly_that_version() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pins = [dep for dep in project["dependencies"] if re.match(r"africastalking\b", dep)]
    assert pins == [f"africastalking=={gateway.SDK_VERSION}"]


def test_the_private_parts_are_where_the_gateway_expects_them() -> None:
    assert callable(getattr(Service, "_Service__make_post_request", None))
    assert callable(getattr(Service, "_Service__make_get_request", None))
    # The helpers' parameters, in the order the recorder passes them.
    expected = ["url", "headers", "data", "params", "callback", "timeout"]
    assert list(inspect.signature(Service._Service__make_post_request).parameters) == expected
    assert list(inspect.signature(Service._Service__make_get_request).parameters) == expected
    # Every URL is built from _baseUrl (or _contentUrl) + path.
    assert "self._baseUrl + path" in inspect.getsource(Service._make_url)
    sms = SMSService("sandbox", "key")
    app = ApplicationService("sandbox", "key")
    assert sms._baseUrl.endswith("/version1") and app._baseUrl.endswith("/version1")


def test_point_at_and_record_status_change_only_the_instance() -> None:
    sms = SMSService("sandbox", "key")
    gateway.point_at(sms, "http://127.0.0.1:9/")
    assert sms._make_url("/messaging") == "http://127.0.0.1:9/version1/messaging"
    assert gateway.record_status(sms, "post") is not None
    assert isinstance(sms._Service__make_post_request, gateway._StatusRecorder)
    assert not isinstance(Service._Service__make_post_request, gateway._StatusRecorder)
    assert africastalking.SMS is None or africastalking.SMS is not sms
