"""Path lookup inside an offline image: every link is followed inside the image, an absolute
target from the image's root, never on the build host (/etc/os-release -> ../usr/lib/os-release
reads the image's file; a link to /etc/shadow cannot reach the host's). The ext4 and the tree
readers share it (`ResolvingReader`); each supplies how to list one name, how to read one link
and how to stat one link-free path."""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from core.errors import ImageDefect
from validations.inode import Stat

MAX_LINKS = 40


def resolve_inside(
    path: str,
    follow_last: bool,
    entry: Callable[[str, str], Stat | None],
    readlink: Callable[[str], str],
) -> str | None:
    """The link-free absolute path of `path` inside the image, or None if absent.

    `entry(real_dir, name)` is the lstat of one name in a link-free directory (None: absent);
    `readlink(real)` the target of a link at a link-free path."""
    todo = [c for c in posixpath.normpath("/" + path).split("/") if c]
    done = "/"
    links = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            done = posixpath.dirname(done) or "/"
            continue
        st = entry(done, name)
        if st is None:
            return None
        here = posixpath.join(done, name)
        if st.is_symlink and (todo or follow_last):
            links += 1
            if links > MAX_LINKS:
                raise ImageDefect(f"too many levels of symbolic links at {path}")
            target = readlink(here)
            if target.startswith("/"):
                done = "/"
            todo = [c for c in target.split("/") if c and c != "."] + todo
            continue
        if todo and not st.is_dir:
            return None
        done = here
    return done


class ResolvingReader:
    """The lookups both offline readers answer the same way, on top of the three a reader
    supplies: `_entry` (lstat one name), `_readlink_real`, `_stat_real` (of link-free paths)."""

    where = "the image"  # in messages: "image disk.raw", "tree /x"

    def _entry(self, real_dir: str, name: str) -> Stat | None:
        raise NotImplementedError

    def _readlink_real(self, real: str) -> str:
        raise NotImplementedError

    def _stat_real(self, real: str) -> Stat:
        raise NotImplementedError

    def _resolve(self, path: str, follow_last: bool) -> str | None:
        """The link-free absolute path of `path` inside the image, or None if absent."""
        return resolve_inside(path, follow_last, self._entry, self._readlink_real)

    def _must(self, path: str, follow: bool = True) -> str:
        real = self._resolve(path, follow)
        if real is None:
            raise FileNotFoundError(f"{path} (in {self.where})")
        return real

    def exists(self, path: str) -> bool:
        return self._resolve(path, True) is not None

    def lexists(self, path: str) -> bool:
        return self._resolve(path, False) is not None

    def stat(self, path: str) -> Stat:
        return self._stat_real(self._must(path))

    def lstat(self, path: str) -> Stat:
        return self._stat_real(self._must(path, follow=False))
