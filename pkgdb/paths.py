"""One name per file: paths as packages list them, mapped to where they are on the image.

On a merged-/usr system (Debian 12, Ubuntu, EL) /bin, /sbin and /lib are links into /usr, while
a package may still list /bin/su: the file's one real path is /usr/bin/su. Both the package
database and the filesystem walk are mapped to that real path before they are compared (dpkg's
own `dpkg -S /usr/bin/su` misses exactly these files).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from pkgdb.reader import ImageReader


def directory_links(reader: ImageReader) -> dict[str, str]:
    """The top-level entries of the image that are links to directories: /bin -> /usr/bin."""
    links = {}
    for name in reader.listdir("/"):
        path = f"/{name}"
        if not reader.lstat(path).is_symlink:
            continue
        target = posixpath.normpath(posixpath.join("/", reader.readlink(path)))
        if reader.exists(target) and reader.lstat(target).is_dir:
            links[path] = target
    return links


def canonical(path: str, links: Mapping[str, str]) -> str:
    """`path` with a leading linked directory replaced by its target (one level: usrmerge)."""
    path = posixpath.normpath("/" + path.lstrip("/")) if path else "/"
    top = "/" + path.split("/", 2)[1] if path != "/" else "/"
    target = links.get(top)
    return target + path[len(top) :] if target else path
