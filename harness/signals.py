"""SIGTERM as KeyboardInterrupt, so that every context manager and fixture finalizer runs.

A cancelled GitHub job sends SIGINT, then SIGTERM about 7.5 s later, then kills the tree. Python
already turns SIGINT into KeyboardInterrupt; SIGTERM would kill the process without unwinding.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


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
