"""Path lookup inside an offline image: every link is followed inside the image, an absolute
target from the image's root, never on the build host (/etc/os-release -> ../usr/lib/os-release
reads the image's file; a link to /etc/shadow cannot reach the host's). The ext4 and the tree
readers share it; each supplies how to list one name and how to read one link."""

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
