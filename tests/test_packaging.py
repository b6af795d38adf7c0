"""The package runs anywhere: data files found installed or in a checkout, catalogs never silently lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner

from smsgw import config, i18n, resources
from smsgw.cli import main
from smsgw.config import PROJECT_ROOT, ConfigError
from smsgw.migrate import upgrade
from smsgw.web.admin import i18n as admin_i18n

SWAHILI_PO = PROJECT_ROOT / "locales" / "sw" / "LC_MESSAGES" / "messages.po"


@pytest.fixture()
def fresh_catalogs() -> Iterator[None]:
    """Forget compiled catalogs before and after, so no test sees another's."""
    i18n.translations.cache_clear()
    admin_i18n.admin_translations.cache_clear()
    yield
    i18n.translations.cache_clear()
    admin_i18n.admin_translations.cache_clear()


def _locales_without(tmp_path: Path, lang: str) -> Path:
    copy = tmp_path / "locales"
    shutil.copytree(PROJECT_ROOT / "locales", copy)
    shutil.rmtree(copy / lang)
    return copy


def _swahili(msgid: str) -> str:
    with SWAHILI_PO.open("rb") as po_file:
        return read_po(po_file, locale="sw")[msgid].string


def test_a_checkout_reads_the_repository_folders() -> None:
    assert config.IN_CHECKOUT
    assert resources.DATA_DIR == PROJECT_ROOT
    assert resources.migrations_dir() == PROJECT_ROOT / "migrations"
    assert resources.content_dir() == PROJECT_ROOT / "content"


def test_the_instance_dir_is_the_checkouts_or_the_current_directorys(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("SMSGW_INSTANCE_DIR", raising=False)
    assert config.default_instance_dir() == PROJECT_ROOT / "instance"
    # Installed: never beside the package in site-packages.
    monkeypatch.setattr(config, "IN_CHECKOUT", False)
    monkeypatch.chdir(tmp_path)
    assert config.default_instance_dir() == tmp_path / "instance"
    monkeypatch.setenv("SMSGW_INSTANCE_DIR", str(tmp_path / "elsewhere"))
    assert config.default_instance_dir() == tmp_path / "elsewhere"


def test_compiled_catalogs_are_read_without_their_sources(monkeypatch, tmp_path, fresh_catalogs) -> None:
    target = tmp_path / "locales" / "sw" / "LC_MESSAGES" / "messages.mo"
    target.parent.mkdir(parents=True)
    with SWAHILI_PO.open("rb") as po_file, target.open("wb") as mo_file:
        write_mo(mo_file, read_po(po_file, locale="sw"))
    monkeypatch.setattr(i18n, "LOCALES_DIR", tmp_path / "locales")
    assert i18n.Text("sw")("Buyer standards") == _swahili("Buyer standards") != "Buyer standards"


def test_a_missing_farmer_catalog_is_an_error_not_english(monkeypatch, tmp_path, fresh_catalogs) -> None:
    monkeypatch.setattr(i18n, "LOCALES_DIR", _locales_without(tmp_path, "sw"))
    with pytest.raises(ConfigError, match=r"sw/LC_MESSAGES/messages\.mo is missing.*reinstall smsgw"):
        i18n.Text("sw")
    with pytest.raises(ConfigError):
        i18n.check_catalogs()
    assert i18n.Text("en")("Buyer standards") == "Buyer standards"


def test_a_missing_admin_catalog_is_an_error(monkeypatch, tmp_path, fresh_catalogs) -> None:
    monkeypatch.setattr(admin_i18n, "LOCALES_DIR", _locales_without(tmp_path, "admin/fr"))
    with pytest.raises(ConfigError, match=r"admin\.mo is missing.*reinstall smsgw"):
        admin_i18n.admin_translations("fr")


def test_the_command_line_says_so_in_one_line(monkeypatch, tmp_path, fresh_catalogs) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setattr(i18n, "LOCALES_DIR", _locales_without(tmp_path, "sw"))
    result = CliRunner().invoke(main, ["simulate", "ussd", "--phone", "+254700000001", "--lang", "sw", ""])
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "reinstall smsgw" in lines[0], result.output


def test_missing_data_files_say_reinstall(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(resources, "DATA_DIR", tmp_path)
    for locate in (resources.alembic_ini, resources.migrations_dir, resources.content_dir):
        with pytest.raises(ConfigError, match="reinstall smsgw"):
            locate()


@pytest.mark.slow
def test_the_wheel_installs_and_runs_far_from_the_checkout(tmp_path) -> None:
    """.ci/wheel-check, with the dependencies borrowed from this environment (CI installs them)."""
    here = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "PYTHON": sys._base_executable, "WHEEL_CHECK_DIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(PROJECT_ROOT / ".ci" / "wheel-check"), "--borrow", here],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("== wheel-check: ok")
    assert _swahili("Buyer standards") in done.stdout
