"""Signals around teardown: a cancelled CI job sends SIGINT, then SIGTERM 7.5 s later; the
second must not cut the teardown the first one started."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _to_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def sigterm_as_keyboard_interrupt() -> None:
    """Make SIGTERM unwind like Ctrl-C, unless someone already handles it (the harness does)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(
        signal.SIGTERM
    ) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _to_keyboard_interrupt)


@contextlib.contextmanager
def deferred() -> Iterator[list[int]]:
    """Hold SIGINT/SIGTERM while the block runs; re-raise as KeyboardInterrupt afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    caught: list[int] = []
    old: dict[int, Any] = {}
    for s in SIGNALS:
        old[s] = signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield caught
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)
    if caught:
        raise KeyboardInterrupt(f"signal {signal.Signals(caught[0]).name} during teardown")
