"""Many files of a few trees of an offline image, read fast: each tree is exported once (one
debugfs run) and read from the copy, every link still resolved inside the image
(validations/linkwalk.py), so a link out of a copied tree reads the image's file, never the
build host's. The CA store check reads a few hundred links this way in well under a second,
where one debugfs run per link would take seconds."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from validations.inode import Stat
from validations.linkwalk import resolve_inside
from validations.offline import OfflineImage


class LocalCopies:
    def __init__(self, image: OfflineImage, trees: tuple[str, ...], workdir: Path) -> None:
        self.image = image
        self.roots: dict[str, Path] = {}  # link-free image path of a tree -> its local copy
        self._links: dict[str, str] = {}  # image links read once (debugfs runs are the cost)
        for n, tree in enumerate(trees):
            real = resolve_inside(tree, True, self._image_entry, image.readlink)
            if real is None or not image.stat(real).is_dir or real in self.roots:
                continue
            self.roots[real] = image.export(real, workdir / f"tree{n}")

    # -- lookups: the copy where there is one, the image elsewhere --------------------------------
    def _image_entry(self, real_dir: str, name: str) -> Stat | None:
        try:
            return self.image.lstat(posixpath.join(real_dir, name))
        except FileNotFoundError:
            return None

    def _local(self, real: str) -> Path | None:
        for root, local in self.roots.items():
            if real == root or real.startswith(root.rstrip("/") + "/"):
                return local / real[len(root) :].lstrip("/")
        return None

    def _entry(self, real_dir: str, name: str) -> Stat | None:
        real = posixpath.join(real_dir, name)
        local = self._local(real)
        if local is None:
            return self._image_entry(real_dir, name)
        try:
            st = os.lstat(local)
        except FileNotFoundError:
            return None
        return Stat(st.st_mode, st.st_uid, st.st_gid, st.st_size)

    def _readlink(self, real: str) -> str:
        local = self._local(real)
        if local is not None:
            return os.readlink(local)
        if real not in self._links:
            self._links[real] = self.image.readlink(real)
        return self._links[real]

    def realpath(self, path: str) -> str | None:
        return resolve_inside(path, True, self._entry, self._readlink)

    # -- reads ----------------------------------------------------------------------------------
    def read(self, path: str) -> bytes | None:
        """The content of the regular file `path` resolves to; None if absent, dangling or not
        a regular file."""
        real = self.realpath(path)
        if real is None:
            return None
        local = self._local(real)
        if local is not None:
            return local.read_bytes() if local.is_file() else None
        st = self.image.stat(real)
        return self.image.read_bytes(real) if st.is_file else None

    def is_dir(self, path: str) -> bool:
        real = self.realpath(path)
        if real is None:
            return False
        local = self._local(real)
        return local.is_dir() if local is not None else self.image.stat(real).is_dir

    def listdir(self, path: str) -> list[str]:
        real = self.realpath(path)
        if real is None:
            return []
        local = self._local(real)
        if local is not None:
            return sorted(os.listdir(local)) if local.is_dir() else []
        return self.image.listdir(real) if self.image.stat(real).is_dir else []

    def files(
        self, top: str, recursive: bool = True, _seen: set[str] | None = None
    ) -> dict[str, bytes]:
        """Every regular file under `top` (links followed inside the image, each folder entered
        once, and only when `recursive`), by image path under `top`."""
        seen = _seen if _seen is not None else set()
        real = self.realpath(top)
        if real is None or real in seen:
            return {}
        seen.add(real)
        out: dict[str, bytes] = {}
        for name in self.listdir(top):
            path = posixpath.join(top, name)
            if self.is_dir(path):
                if recursive:
                    out.update(self.files(path, True, seen))
                continue
            data = self.read(path)
            if data is not None:
                out[path] = data
        return out
