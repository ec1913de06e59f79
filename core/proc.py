"""Processes the harness starts and must stop: one finder, one way to stop a group.

Long-running children (Packer, QEMU, mmdebstrap) each run in their own process group, so a
terminal's Ctrl-C reaches the harness only and the harness decides how each child ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.signals import deferred
from core.waiting import WaitTimeout, wait_for

PR_SET_PDEATHSIG = 1


def parent_death_signal(sig: int) -> Callable[[], None]:
    """A Popen `preexec_fn` asking Linux to send `sig` to the child when the thread that
    started it dies, SIGKILL included (survives exec, cleared for set-user-ID programs)."""

    def arm() -> None:  # runs in the child between fork and exec: one prctl, no lock taken
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))

    return arm


def start_group(
    argv: list[str], *, env: dict[str, str], death_signal: int, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """Start a long child for `supervise`: its own process group and session (a terminal's
    Ctrl-C reaches the harness, which decides how the child ends), `death_signal` when the
    harness dies outright, output merged into one text pipe. FileNotFoundError if absent."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=parent_death_signal(death_signal),  # noqa: PLW1509 - prctl only, no locks
    )


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


def started_at(pid: int) -> float | None:
    """When a process started (epoch seconds, to the second), None when it is gone."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, IndexError, StopIteration, ValueError):
        return None
    # field 22 of /proc/<pid>/stat (the 20th after the command name): clock ticks since boot
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def argv_of(pid: int) -> list[str]:
    """The command line of a running process, [] when it is gone (or a zombie)."""
    try:
        raw = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").rstrip("\0").split("\0") if raw else []


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

    def gone() -> bool:
        if proc is not None:
            proc.poll()
        return not group_alive(pgid)

    try:
        wait_for(gone, what=f"process group {pgid} to exit", timeout=grace, interval=0.2)
    except WaitTimeout:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def stop_pid(pid: int, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `grace`, a process that is not our child; True once gone."""

    def gone() -> bool:
        return not pid_alive(pid) or not argv_of(pid)

    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        try:
            return wait_for(gone, what=f"pid {pid} to exit", timeout=grace, interval=0.2)
        except WaitTimeout:
            continue
    return not pid_alive(pid)


def supervise(
    proc: subprocess.Popen[str],
    *,
    timeout_s: float,
    grace_s: float,
    on_line: Callable[[str], None],
    on_stop: Callable[[str], None] = lambda _why: None,
    first_signal: int = signal.SIGINT,
) -> str:
    """Feed a child's output to `on_line` until it exits; on timeout or KeyboardInterrupt give
    its process group `first_signal` and `grace_s` to clean up (further SIGINT/SIGTERM held
    meanwhile), then SIGKILL. Returns "exited" or "timed out"; re-raises KeyboardInterrupt
    once the child is gone."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw)
        lines.put(None)

    reader = threading.Thread(target=pump, name="child-output", daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    ended = "exited"
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                ended = "timed out"
                with deferred():
                    on_stop(f"timed out after {timeout_s:.0f}s")
                    kill_group(proc.pid, grace_s, first_signal, proc=proc)
                break
            try:
                raw = lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if raw is None:
                break
            on_line(raw)
    except KeyboardInterrupt:
        ended = "interrupted"
        # A second signal (a cancelled CI job sends SIGTERM 7.5 s after SIGINT) must not cut
        # the child's own cleanup short: it is held until the child is gone.
        with contextlib.suppress(KeyboardInterrupt), deferred():
            on_stop("interrupted")
            kill_group(proc.pid, grace_s, first_signal, proc=proc)
        raise
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s if ended != "exited" else None)
        if proc.poll() is None:
            kill_group(proc.pid, 0, signal.SIGKILL, proc=proc)
            proc.wait()
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
    return ended
