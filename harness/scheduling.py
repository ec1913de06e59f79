"""Keep every test of one OS on one xdist worker, so each OS is built once and booted once.

`--dist loadgroup` with `xdist_group` marks is silently ignored by pytest 9.2 with xdist 3.8
(pytest-xdist issue #1386), so the harness brings its own scheduler: xdist's LoadScope
scheduling with the OS, read from the test id, as the scope. tests/integration/test_scheduling.py
fails if this ever stops holding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from xdist.scheduler import LoadScopeScheduling


def os_of_nodeid(nodeid: str, names: Sequence[str]) -> str | None:
    """The OS a test id belongs to: its parameter ids contain the OS name as a whole part."""
    m = re.search(r"\[(.*)\]$", nodeid)
    if not m:
        return None
    params = m.group(1)
    for name in sorted(names, key=len, reverse=True):
        if re.search(rf"(^|-){re.escape(name)}(-|$)", params):
            return name
    return None


class OSScheduling(LoadScopeScheduling):
    """LoadScope with one scope per OS; tests without an OS keep xdist's module scope."""

    def __init__(self, config: Any, log: Any = None, os_names: Sequence[str] = ()):
        super().__init__(config, log)
        self.os_names = list(os_names)

    def _reschedule(self, node: Any) -> None:
        """Give a worker its next OS only when it is on the last test of the current one.

        xdist's LoadScope tops a worker up to two scopes while it has two or fewer tests pending,
        which would queue a second OS behind a long build instead of on an idle worker. A worker
        holds back its last test until it gets more work or is shut down, so "one pending" is
        the earliest point at which it can take the next OS."""
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
            return
        if self._pending_of(self.assigned_work[node]) > 1:
            return
        self._assign_work_unit(node)

    def _split_scope(self, nodeid: str) -> str:
        name = os_of_nodeid(nodeid, self.os_names)
        return f"os:{name}" if name else super()._split_scope(nodeid)


CLONE_FIXTURES = frozenset({"vm", "host"})
# Session fixtures whose questions the clone answers in its background: each has a `start()`,
# called at the first booted check of its OS (harness/fixtures.py); the checks that read them
# run after every other check of the OS, so the clone works on them meanwhile.
BACKGROUND_FIXTURES = ("clone_answers",)


def needs_clone(item: Any) -> bool:
    return bool(CLONE_FIXTURES & set(getattr(item, "fixturenames", ())))


def os_of_item(item: Any) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("os_name") if callspec else None


def background_fixtures(item: Any) -> list[str]:
    names = set(getattr(item, "fixturenames", ()))
    return [name for name in BACKGROUND_FIXTURES if name in names]


def offline_checks_first(items: list[Any]) -> list[Any]:
    """Within each OS, the checks that read the artifact only first, then those that need the
    booted clone, and last those that read answers asked in the clone's background: the clone
    is started before the first offline check and boots meanwhile (harness/fixtures.py), so
    the offline checks cost no wall time beside the boot, and the background questions none
    beside the other booted checks. Otherwise the order pytest chose (one OS after the other,
    modules in order) is kept."""
    first_seen: dict[Any, int] = {}
    keyed = []
    for index, item in enumerate(items):
        os_name = os_of_item(item)
        group = first_seen.setdefault(os_name, index)
        rank = 0
        if os_name is not None and needs_clone(item):
            rank = 2 if background_fixtures(item) else 1
        keyed.append(((group, rank, index), item))
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]
