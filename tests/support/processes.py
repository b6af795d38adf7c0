"""The environment of an smsgw process started by a test: its own database, the real
Africa's Talking gateway pointed at the test's fake API."""
from __future__ import annotations

import os

from tests.fake_at import FakeAfricasTalking


def gateway_env(url: str, fake: FakeAfricasTalking, **extra: str) -> dict[str, str]:
    """This process's environment for a child on ``url`` sending through ``fake``."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SMSGW_GATEWAY": "africastalking",
        "AT_USERNAME": "sandbox",
        "AT_API_KEY": fake.api_key,
        "AT_API_BASE": fake.base_url,
        **extra,
    }
    # The child's own DATABASE_URL is the one to use, never the test run's.
    env.pop("TEST_DATABASE_URL", None)
    return env
