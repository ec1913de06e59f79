"""A machine-wide limit on running QEMU instances, shared by every xdist worker and session.

Under TCG each VM eats a core; more VMs than cores only makes every boot slower and time
out. One lock file per core in a shared directory: holding a lock is holding a slot.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from core.errors import InfrastructureError
from core.waiting import WaitTimeout, wait_for


def slot_count() -> int:
    return max(1, len(os.sched_getaffinity(0)))


@contextmanager
def qemu_slot(directory: Path, timeout_s: float, count: int | None = None) -> Iterator[int]:
    """Hold one of `count` (default: the machine's cores) slots until the block exits."""
    directory.mkdir(parents=True, exist_ok=True)
    count = count or slot_count()

    def free_slot() -> tuple[int, FileLock] | None:
        for index in range(count):
            lock = FileLock(str(directory / f"slot-{index}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            return index, lock
        return None

    try:
        index, lock = wait_for(free_slot, what="a free QEMU slot", timeout=timeout_s, interval=1.0)
    except WaitTimeout:
        raise InfrastructureError(
            f"no free QEMU slot after {timeout_s:.0f} s ({count} slots in {directory}): "
            "other VMs hold every core; wait for them or raise the boot timeout"
        ) from None
    try:
        yield index
    finally:
        lock.release()
