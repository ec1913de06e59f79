"""Temporary folders and files named after their owner, so a later run can tell leftovers.

Everything temporary the harness makes in a shared place (the image cache, the system's
temporary folder, the artifacts, a publish folder) carries the pid of the process that made it:
`<prefix>.pid<N>.<random>`. A run killed outright (SIGKILL, a lost runner, a machine crash)
cannot remove its own; the next run can, once it knows the owner is gone: the pid is not alive,
or it now belongs to a process started after the entry last changed (the pid was reused).
What a live session makes (another checkout, another xdist worker) is never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.proc import pid_alive, started_at
from core.trees import remove_tree

TAG = re.compile(r"\.pid(\d+)\.")
CLOCK_SLACK_S = 2.0  # process start times are known to the second


def tag(prefix: str) -> str:
    """The start of a name this process owns: `<prefix>.pid<N>.`."""
    return f"{prefix}.pid{os.getpid()}."


def temp_dir(prefix: str, parent: Path | None = None) -> Path:
    """A new folder `<parent>/<prefix>.pid<N>.<random>` (parent: the temporary folder,
    $TMPDIR or /tmp)."""
    parent = Path(parent or tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=tag(prefix), dir=parent))


@contextlib.contextmanager
def scratch(prefix: str, parent: Path | None = None) -> Iterator[Path]:
    """temp_dir for the length of a block, then removed (core.trees.remove_tree)."""
    path = temp_dir(prefix, parent)
    try:
        yield path
    finally:
        remove_tree(path)


def socket_dir(prefix: str) -> Path:
    """temp_dir for unix sockets (QMP, SSH control): a socket path is limited to 108 bytes,
    so a long $TMPDIR gives way to /tmp."""
    parent = Path(tempfile.gettempdir())
    return temp_dir(prefix, parent if len(str(parent)) <= 48 else Path("/tmp"))


def owner_of(name: str) -> int | None:
    m = TAG.search(name)
    return int(m.group(1)) if m else None


def owner_alive(path: Path, pid: int) -> bool:
    """True while the process that made `path` may still be using it."""
    if not pid_alive(pid):
        return False
    started = started_at(pid)
    try:
        changed = path.lstat().st_mtime
    except FileNotFoundError:
        return True  # gone already: not ours to report
    return started is None or started <= changed + CLOCK_SLACK_S


def is_leftover(path: Path) -> bool:
    """A tagged entry whose owner is gone; an untagged one is never judged here."""
    pid = owner_of(path.name)
    return pid is not None and not owner_alive(path, pid)


def folder_busy(folder: Path) -> bool:
    """True if a process holds one of the `*.lock` files of `folder` (a build in progress
    there). How untagged entries of older versions of the harness are judged."""
    for lock in folder.glob("*.lock"):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            continue
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing releases the lock we may have taken
    return False


def stale_entries(folder: Path, prefixes: tuple[str, ...], untagged: bool = True) -> list[Path]:
    """Entries of `folder` named with one of `prefixes` that no live process owns: tagged
    ones whose owner is gone; with `untagged`, untagged ones too (older harness versions)
    when no lock of the folder is held (only for folders of our own, such as the cache)."""
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(prefixes)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    tagged = [p for p in entries if owner_of(p.name) is not None]
    legacy = [p for p in entries if owner_of(p.name) is None] if untagged else []
    stale = [p for p in tagged if is_leftover(p)]
    if legacy and not folder_busy(folder):
        stale += legacy
    return sorted(stale)


OWNER_FILE = "owner.pid"


def claim(folder: Path) -> None:
    """Mark `folder` as this process's for as long as it lives (a run's record folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNER_FILE).write_text(f"{os.getpid()}\n")


def claim_alive(folder: Path) -> bool | None:
    """Whether the process that claimed `folder` lives; None when it was never claimed."""
    marker = folder / OWNER_FILE
    try:
        pid = int(marker.read_text().strip())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return False
    return owner_alive(marker, pid)


# Set by the harness in its own environment, so every process it starts (Packer, QEMU,
# mmdebstrap and their children) can be told apart by the run it belongs to.
RUN_ENV = "XCPNG_GOLDEN_RUN"


def processes_of_runs(run_ids: set[str]) -> dict[int, str]:
    """pid -> run id of every process whose environment says it belongs to one of `run_ids`
    (processes of other users are not readable, and not ours)."""
    wanted = {f"{RUN_ENV}={r}".encode(): r for r in run_ids}
    found: dict[int, str] = {}
    if not wanted:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for var in environ:
            if var in wanted:
                found[int(entry.name)] = wanted[var]
                break
    return found
