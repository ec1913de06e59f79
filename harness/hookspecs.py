"""Hooks a conftest can implement to adapt the harness (the harness's own tests use them)."""

from __future__ import annotations

import pytest

from core.destination import Destination
from core.platform import Platform
from core.redact import Redactor
from core.settings import Settings
from publish.stores.base import Store


@pytest.hookspec(firstresult=True)
def pytest_harness_expected_checks(family: str) -> tuple[str, ...] | None:
    """The check ids every OS of `family` must pass (default: validations/expected.py)."""


@pytest.hookspec(firstresult=True)
def pytest_harness_make_platform(
    name: str, settings: Settings, run_id: str, redactor: Redactor
) -> Platform | None:
    """The platform object for `name` (default: platforms.registry.get_platform)."""


@pytest.hookspec(firstresult=True)
def pytest_harness_open_store(to: Destination, settings: Settings) -> Store | None:
    """The store `--publish` writes to (default: None, the publisher opens `to` itself)."""
