"""Fixtures shared by the interrupt matrix's files (tests/integration/test_interrupts_*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.interrupts import Matrix


@pytest.fixture
def matrix(tmp_path: Path) -> Iterator[Matrix]:
    """A fresh world for one stopped run and its next run; nothing of it outlives the test."""
    world = Matrix.create(tmp_path)
    yield world
    world.cleanup()
