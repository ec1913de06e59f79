"""The test command's file order (tests/conftest.py): the longest files first, as given."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LONGEST_FIRST

ROOT = Path(__file__).resolve().parents[2]


def test_every_ranked_file_exists_once() -> None:
    """A renamed file would drop out of the order silently and run late again."""
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
    assert [p for p in LONGEST_FIRST if not (ROOT / p).is_file()] == []


def test_the_test_command_keeps_that_order() -> None:
    """xdist reorders files by test count unless told not to."""
    script = (ROOT / "scripts" / "test").read_text()
    assert "--dist loadfile --no-loadscope-reorder" in script
