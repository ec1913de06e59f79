"""Removing a tree the harness made: on one filesystem, never through a mount point.

A half-built root (mmdebstrap's, say) can hold /proc, /sys, a devpts or a bind mount of a host
folder. `rm -rf` or `shutil.rmtree` descend into them and delete (or try to delete) what lies
on the other side. Here every folder is opened relative to its parent (no symlink is followed)
and entered only if it sits on the same mount as the root of the tree, which
/proc/self/fdinfo tells per open folder (`mnt_id`, so a bind mount of the same filesystem is
caught too). Mount points found below the tree beforehand are unmounted when allowed; one that
stays is named with the command that frees it, and nothing of the tree is deleted.

This is the one implementation: every phase removes its temporary trees with `remove_tree`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
from pathlib import Path

MNT_DETACH = 2
MOUNTINFO = Path("/proc/self/mountinfo")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as \\040-style octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points() -> list[Path]:
    """Every mount point of this process's mount namespace."""
    try:
        lines = MOUNTINFO.read_text().splitlines()
    except OSError:
        return []
    return [Path(_unescape(line.split()[4])) for line in lines if len(line.split()) > 4]


def mounts_below(root: Path) -> list[Path]:
    """Mount points at or below `root`, deepest first (the order to unmount them in)."""
    real = Path(os.path.realpath(root))
    found = {m for m in mount_points() if m == real or real in m.parents}
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount(path: Path) -> str | None:
    """Unmount `path` (detached if busy); None when done, else why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    for flags in (0, MNT_DETACH):
        if libc.umount2(os.fsencode(path), flags) == 0:
            return None
        err = ctypes.get_errno()
        if err != errno.EBUSY:
            return os.strerror(err)
    return os.strerror(errno.EBUSY)


def _mount_id(fd: int) -> int | None:
    """The mount an open file sits on (Linux >= 3.15); None when /proc cannot tell."""
    try:
        for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _free_mounts(root: Path, problems: list[str]) -> None:
    for mount in mounts_below(root):
        why = unmount(mount)
        if why is not None:
            problems.append(
                f"{mount} is a mount point ({why}); nothing of {root} was deleted. "
                f"Free it with `umount -R {mount}` (as root), then remove {root}"
            )


def _empty(fd: int, path: Path, dev: int, mnt: int | None, problems: list[str]) -> bool:
    """Delete everything below the open folder `fd`; True if it is now empty."""
    empty = True
    with os.scandir(fd) as entries:
        names = [e.name for e in entries]
    for name in names:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=fd)
                continue
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                cst = os.fstat(child)
                if cst.st_dev != dev or (mnt is not None and _mount_id(child) != mnt):
                    problems.append(
                        f"{path / name} is a mount point (another filesystem or a bind mount); "
                        f"not deleted through it. Free it with `umount -R {path / name}`, then "
                        f"remove {path}"
                    )
                    empty = False
                    continue
                if not _empty(child, path / name, dev, mnt, problems):
                    empty = False
                    continue
            finally:
                os.close(child)
            os.rmdir(name, dir_fd=fd)
        except FileNotFoundError:
            continue  # removed meanwhile (a dying child process cleaning up)
        except OSError as exc:
            problems.append(f"{path / name}: {exc.strerror}")
            empty = False
    return empty


def remove_tree(path: Path) -> list[str]:
    """Remove `path` and everything below it without leaving its mount; return what stayed,
    one line each naming it and the command that frees it ([] when all is gone)."""
    path = Path(path)
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return []
    if not stat.S_ISDIR(st.st_mode):
        path.unlink(missing_ok=True)
        return []
    problems: list[str] = []
    _free_mounts(path, problems)
    if problems:
        return problems
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return []
    try:
        empty = _empty(fd, path, os.fstat(fd).st_dev, _mount_id(fd), problems)
    finally:
        os.close(fd)
    if empty:
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(path)
    return problems


def remove_trees(paths: list[Path]) -> list[str]:
    """remove_tree on each; every problem of every tree."""
    return [p for path in paths for p in remove_tree(path)]
