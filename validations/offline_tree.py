"""The offline image interface over a root filesystem laid out as a directory tree.

For roots that are already files on this machine: a tree the tests make (the EL-shaped roots of
tests/support/el_tree.py, since no EL VM boots here), an unpacked image, a mounted snapshot.
Like the disk readers, it never follows a link on the build host: every link is resolved
inside the tree, an absolute target from the tree's root, so /etc/os-release -> ../usr/lib/
os-release reads the tree's file and a link to /etc/shadow cannot escape to the host's.
Extended attributes (SELinux labels) are read from the files themselves.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.errors import ImageDefect
from validations.inode import Stat
from validations.linkwalk import ResolvingReader


def _stat(st: os.stat_result) -> Stat:
    return Stat(mode=st.st_mode, uid=st.st_uid, gid=st.st_gid, size=st.st_size)


class TreeImage(ResolvingReader):
    """Read-only access to the root filesystem under `root`."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ImageDefect(f"{root} is not a directory holding a root filesystem")
        self.root = root
        self.where = f"tree {root}"

    def _host(self, real: str) -> Path:
        return self.root / real.lstrip("/")

    def _entry(self, real_dir: str, name: str) -> Stat | None:
        try:
            return _stat(os.lstat(self._host(posixpath.join(real_dir, name))))
        except FileNotFoundError:
            return None

    def _readlink_real(self, real: str) -> str:
        return os.readlink(self._host(real))

    def _stat_real(self, real: str) -> Stat:
        return _stat(os.lstat(self._host(real)))

    # -- the OfflineImage interface (exists, lexists, stat, lstat: ResolvingReader) ----------

    def readlink(self, path: str) -> str:
        real = self._must(path, follow=False)
        if not self.lstat(real).is_symlink:
            raise OSError(f"{path} is not a symbolic link")
        return os.readlink(self._host(real))

    def listdir(self, path: str) -> list[str]:
        real = self._must(path)
        if not self.stat(real).is_dir:
            raise NotADirectoryError(path)
        return sorted(os.listdir(self._host(real)))

    def read_bytes(self, path: str) -> bytes:
        real = self._must(path)
        if self.stat(real).is_dir:
            raise IsADirectoryError(path)
        return self._host(real).read_bytes()

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", "replace")

    def walk(self, top: str) -> Iterator[tuple[str, Stat]]:
        """Every entry under `top` (links not followed), depth first: (path, lstat)."""
        real = self._must(top)
        for name in sorted(os.listdir(self._host(real))):
            child = posixpath.join(top, name)
            st = _stat(os.lstat(self._host(posixpath.join(real, name))))
            yield child, st
            if st.is_dir:
                yield from self.walk(child)

    def export(self, top: str, dest: Path) -> Path:
        """Copy the tree `top` into `dest` (links copied as links); returns the copy's path."""
        real = self._must(top)
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / (posixpath.basename(real.rstrip("/")) or "root")
        if self.stat(real).is_dir:
            shutil.copytree(self._host(real), target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(self._host(real), target, follow_symlinks=False)
        return target

    def read_files(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """(path, content) of each regular file of `paths`; links and the rest are skipped."""
        for path in paths:
            real = self._resolve(path, follow_last=False)
            if real is not None and self._stat_real(real).is_file:
                yield path, self._host(real).read_bytes()

    # -- extended attributes (validations/selinux.py) ----------------------------------------
    def getxattrs(self, paths: Iterable[str], name: str) -> dict[str, bytes]:
        found = {p: self.getxattr(p, name) for p in paths if self.lexists(p)}
        return {p: v for p, v in found.items() if v is not None}

    def getxattr(self, path: str, name: str) -> bytes | None:
        real = self._must(path, follow=False)
        try:
            return os.getxattr(self._host(real), name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP):  # none set; none possible here
                return None
            raise
