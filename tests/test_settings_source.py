"""One source for every setting: ``smsgw.config``'s defaults, read once, passed down.

The policies that hold a few settings take their defaults from config, the comma-separated
settings are parsed in config, and the scheduler's jobs use the settings its ``main`` was
given rather than reading the environment again.
"""
from __future__ import annotations

import ast
import inspect

from smsgw import config, scheduler
from smsgw.messaging.gateways import build_gateway
from smsgw.services import bulletins, price_checks


def test_policies_default_to_the_configured_defaults() -> None:
    defaults = config.defaults()
    checks = price_checks.Policy()
    assert checks.trusted_sources == frozenset(config.items(defaults["PRICE_AUTO_APPROVE_SOURCES"]))
    assert (checks.z_threshold, checks.min_change, checks.cross_band) == (
        defaults["PRICE_ANOMALY_Z"], defaults["PRICE_ANOMALY_MIN_CHANGE"], defaults["PRICE_CROSS_MARKET_BAND"],
    )
    assert (checks.window_days, checks.min_points) == (defaults["PRICE_HISTORY_DAYS"], defaults["PRICE_MIN_HISTORY"])
    assert price_checks.Policy.from_settings(config.load_settings()) == checks
    sending = bulletins.Policy()
    assert (sending.quiet_start, sending.quiet_end, sending.daily_cap) == (
        defaults["BULLETIN_QUIET_START"], defaults["BULLETIN_QUIET_END"], defaults["BULLETIN_DAILY_CAP"],
    )


def test_a_full_settings_mapping_is_used_as_given(monkeypatch) -> None:
    monkeypatch.setenv("PRICE_ANOMALY_Z", "9")  # the environment does not leak past settings
    settings = {**config.defaults(), "PRICE_ANOMALY_Z": 4.0, "SMSGW_SENDER_IDS": "ke=SOKO, SN=SOKOSN"}
    assert price_checks.Policy.from_settings(settings).z_threshold == 4.0
    assert bulletins.Policy.from_settings(settings).sender_ids == {"KE": "SOKO", "SN": "SOKOSN"}


def test_allowed_prefixes_are_parsed_in_one_place() -> None:
    settings = {**config.defaults(), "SMSGW_ALLOWED_PREFIXES": " +254, ,+221 "}
    assert config.allowed_prefixes(settings) == ("+254", "+221")
    assert build_gateway(settings).prefixes == ("+254", "+221")
    assert config.allowed_prefixes({**settings, "SMSGW_ALLOWED_PREFIXES": ""}) == ()


def test_scheduler_jobs_do_not_read_the_environment() -> None:
    tree = ast.parse(inspect.getsource(scheduler))
    jobs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.endswith("_job")]
    assert len(jobs) >= 5
    for job in jobs:
        names = {node.id for node in ast.walk(job) if isinstance(node, ast.Name)}
        attributes = {node.attr for node in ast.walk(job) if isinstance(node, ast.Attribute)}
        assert "load_settings" not in names and "environ" not in attributes and "getenv" not in attributes, job.name


def test_scheduler_jobs_use_the_settings_main_was_given(monkeypatch) -> None:
    given = {**config.defaults(), "OUTBOX_LEASE_SECONDS": 77}
    monkeypatch.setattr(scheduler, "_runtime", {"settings": given})
    monkeypatch.setattr(scheduler, "load_settings", lambda *args: (_ for _ in ()).throw(AssertionError("read again")))
    assert scheduler._settings() is given
