"""The libguestfs reader for roots debugfs cannot read (XFS, LVM), e.g. EL images.

Kept apart from validations/offline.py because it launches an appliance VM: about 25 s under
TCG, so one handle serves every read of an image. Needs Debian's python3-guestfs and a host
kernel (linux-image-amd64); KVM aborts here, so the backend is forced to TCG.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from core.errors import InfrastructureError
from validations.inode import Stat


class GuestfsImage:
    """The OfflineImage interface over a read-only libguestfs handle with the OS mounted."""

    def __init__(self, handle: Any) -> None:
        self._g = handle

    def exists(self, path: str) -> bool:
        return bool(self._g.exists(path))

    def lexists(self, path: str) -> bool:
        try:
            self._g.lstatns(path)
        except RuntimeError:
            return False
        return True

    def read_bytes(self, path: str) -> bytes:
        if not self.exists(path):
            raise FileNotFoundError(path)
        return bytes(self._g.read_file(path))

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", "replace")

    def listdir(self, path: str) -> list[str]:
        if not self._g.is_dir(path):
            raise NotADirectoryError(path)
        return sorted(self._g.ls(path))

    def _stat(self, st: dict[str, int]) -> Stat:
        return Stat(mode=st["st_mode"], uid=st["st_uid"], gid=st["st_gid"], size=st["st_size"])

    def stat(self, path: str) -> Stat:
        if not self.exists(path):
            raise FileNotFoundError(path)
        return self._stat(self._g.statns(path))

    def lstat(self, path: str) -> Stat:
        if not self.lexists(path):
            raise FileNotFoundError(path)
        return self._stat(self._g.lstatns(path))

    def getxattrs(self, paths: Iterable[str], name: str) -> dict[str, bytes]:
        found = {p: self.getxattr(p, name) for p in paths if self.lexists(p)}
        return {p: v for p, v in found.items() if v is not None}

    def getxattr(self, path: str, name: str) -> bytes | None:
        """An extended attribute of `path` itself (validations/selinux.py), None if unset."""
        if not self.lexists(path):
            raise FileNotFoundError(path)
        names = {x["attrname"] for x in self._g.lgetxattrs(path)}
        return bytes(self._g.lgetxattr(path, name)) if name in names else None

    def readlink(self, path: str) -> str:
        return str(self._g.readlink(path))

    def export(self, top: str, dest: Path) -> Path:
        """Copy the tree `top` out of the image into `dest`; returns the copy's path."""
        if not self.exists(top):
            raise FileNotFoundError(top)
        dest.mkdir(parents=True, exist_ok=True)
        self._g.copy_out(top, str(dest))
        return dest / (top.rstrip("/").rsplit("/", 1)[-1] or "root")

    def read_files(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """(path, content) of each regular file of `paths`; links and the rest are skipped."""
        for path in paths:
            if self.lexists(path) and self.lstat(path).is_file:
                yield path, self.read_bytes(path)

    def walk(self, top: str) -> Iterator[tuple[str, Stat]]:
        for name in self.listdir(top):
            child = f"{top.rstrip('/')}/{name}"
            st = self.lstat(child)
            yield child, st
            if st.is_dir:
                yield from self.walk(child)


@contextlib.contextmanager
def open_guestfs(raw: Path) -> Iterator[GuestfsImage]:
    try:
        import guestfs
    except ImportError as exc:
        raise InfrastructureError(
            "the image's root is XFS or LVM and libguestfs is not installed: "
            "apt-get install python3-guestfs linux-image-amd64"
        ) from exc
    os.environ.setdefault("LIBGUESTFS_BACKEND", "direct")
    os.environ.setdefault("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    g = guestfs.GuestFS(python_return_dict=True)
    try:
        g.add_drive_opts(str(raw), format="raw", readonly=1)
        g.launch()
        roots = g.inspect_os()
        if not roots:
            raise InfrastructureError(f"libguestfs found no operating system in {raw}")
        mps = g.inspect_get_mountpoints(roots[0])
        for mp in sorted(mps, key=len):
            g.mount_ro(mps[mp], mp)
        yield GuestfsImage(g)
    finally:
        g.close()
