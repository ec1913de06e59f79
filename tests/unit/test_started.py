"""core.platform.Started: a clone is waited for once; its VM, or its failure, is what every
later ready() gives (the vm fixture and `booted` may both ask)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from core.platform import Started, booted


def test_waits_once_and_returns_the_same_vm() -> None:
    calls: list[int] = []
    vm: Any = object()

    def wait() -> Any:
        calls.append(1)
        return vm

    started = Started(wait)
    assert started.ready() is vm and started.ready() is vm and calls == [1]


def test_a_failed_wait_is_raised_again_without_waiting_again() -> None:
    calls: list[int] = []

    def wait() -> Any:
        calls.append(1)
        raise TimeoutError("no SSH")

    started = Started(wait)
    for _ in range(2):
        with pytest.raises(TimeoutError, match="no SSH"):
            started.ready()
    assert calls == [1]


def test_booted_enters_then_waits() -> None:
    events: list[str] = []
    vm: Any = object()

    @contextlib.contextmanager
    def start() -> Iterator[Started]:
        events.append("start")

        def wait() -> Any:
            events.append("ready")
            return vm

        yield Started(wait)
        events.append("stop")

    with booted(start()) as got:
        assert got is vm and events == ["start", "ready"]
    assert events == ["start", "ready", "stop"]
