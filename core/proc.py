"""Processes the harness starts and must stop: one finder, one way to stop a group.

Long-running children (Packer, QEMU, mmdebstrap) each run in their own process group, so a
terminal's Ctrl-C reaches the harness only and the harness decides how each child ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def argv_of(pid: int) -> list[str]:
    """The command line of a running process, [] when it is gone."""
    try:
        raw = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def find_processes(program: str, marker: str) -> list[int]:
    """Pids whose program name starts with `program` and whose arguments mention `marker`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        argv = argv_of(int(entry.name))
        if argv and Path(argv[0]).name.startswith(program) and any(marker in a for a in argv[1:]):
            pids.append(int(entry.name))
    return pids


def kill_group(
    pgid: int, grace: float, sig: int = signal.SIGINT, proc: subprocess.Popen[str] | None = None
) -> None:
    """Signal a process group, wait up to `grace` seconds, then SIGKILL what is left.

    `proc`, our own child leading the group, is reaped while waiting: a zombie still counts as
    a member of its group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def stop_pid(pid: int, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `grace`, a process that is not our child; True once gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not pid_alive(pid) or not argv_of(pid):
                return True
            time.sleep(0.2)
    return not pid_alive(pid)
