"""One way to wait: poll a condition until it holds or its time is up.

Waiting for something that is not there yet (an IP, a login, a task's end, a free slot, a
process gone) is polling, written once here. tenacity stays for retrying calls that fail
transiently (an XAPI call, an S3 response body).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not hold in time; the message names what was awaited and how long."""

    def __init__(self, what: str, timeout: float):
        super().__init__(f"timed out after {timeout:.0f} s waiting for {what}")
        self.what = what
        self.timeout = timeout


def wait_for(
    predicate: Callable[[], T | Literal[False] | None],
    *,
    what: str,
    timeout: float,
    interval: float,
    backoff: float = 1.0,
    max_interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    It is called at once, then after each pause: `interval` seconds, multiplied by `backoff`
    after every pause up to `max_interval`, never past the deadline, where it is called one
    last time. Then WaitTimeout. An exception from `predicate` ends the wait (a certain
    failure need not wait for the timeout). `clock` and `sleep` are for tests."""
    deadline = clock() + timeout
    pause = interval
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - clock()
        if left <= 0:
            raise WaitTimeout(what, timeout)
        sleep(min(pause, left))
        pause = pause * backoff
        if max_interval is not None:
            pause = min(pause, max_interval)
