"""Signals: SIGTERM unwinds like Ctrl-C, and a second signal never cuts a teardown short.

A cancelled GitHub job sends SIGINT, then SIGTERM about 7.5 s later, then kills the tree.
Python turns SIGINT into KeyboardInterrupt; SIGTERM would kill the process without running a
single finalizer. Teardowns that must finish (a VM, its disks) hold both signals until done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def install_sigterm_as_interrupt() -> bool:
    """Install the handler in the main thread if SIGTERM still has its default action."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return False
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return True


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


def ignore_from_now() -> None:
    """Ignore SIGINT and SIGTERM for the rest of the process: an interrupted run that has
    cleaned up and written its record only exits now, and a cancelled job's second signal
    (SIGTERM 7.5 s after SIGINT) landing in the interpreter's shutdown would otherwise kill it
    by signal (finalization puts Python handlers back to the default action; it keeps SIG_IGN),
    so the job would report a death by SIGTERM instead of the interrupted run it was."""
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
