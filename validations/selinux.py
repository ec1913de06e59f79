"""SELinux, read offline: the label a file carries and the label the image's own policy wants.

A label is the `security.selinux` extended attribute; a file without one is unlabeled (the
kernel shows it as unlabeled_t and a confined service is denied it). The wanted label comes
from the policy's file_contexts in the image, matched the way libselinux's selabel_lookup does
(and so restorecon): specifications are read from file_contexts, then .homedirs, then .local;
exact paths (no regex character) move behind the regular expressions; the last specification
that matches the whole path, and the file type when it names one, wins. Path aliases from
file_contexts.subs_dist and .subs apply first. Pure, so it is unit-tested without an EL image.
"""

from __future__ import annotations

import posixpath
import re
import stat as statmod
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from core.errors import InfrastructureError
from validations.inode import Stat
from validations.offline import OfflineImage

XATTR = "security.selinux"
_META = re.compile(r"[.^$?*+|\[({\\]")
# file_contexts file-type flags -> the stat type they match
_FILE_TYPES = {
    "--": statmod.S_IFREG,
    "-d": statmod.S_IFDIR,
    "-l": statmod.S_IFLNK,
    "-c": statmod.S_IFCHR,
    "-b": statmod.S_IFBLK,
    "-s": statmod.S_IFSOCK,
    "-p": statmod.S_IFIFO,
}


@runtime_checkable
class XattrReader(Protocol):
    """An offline reader that can read extended attributes (tree, ext4 and libguestfs do)."""

    def getxattr(self, path: str, name: str) -> bytes | None:
        """The attribute of `path` itself (a link is not followed), None when it has none."""
        ...


def label(image: OfflineImage, path: str) -> str | None:
    """The SELinux label of `path` in the image, None when it carries none (unlabeled)."""
    if not isinstance(image, XattrReader):
        raise InfrastructureError(
            f"the offline reader {type(image).__name__} cannot read extended attributes, so "
            "SELinux labels cannot be checked"
        )
    raw = image.getxattr(path, XATTR)
    if raw is None:
        return None
    return raw.rstrip(b"\0").decode("utf-8", "replace")


def context_type(context: str) -> str:
    """The type field of user:role:type[:level] ('' for a malformed context)."""
    parts = context.split(":")
    return parts[2] if len(parts) >= 3 else ""


@dataclass(frozen=True)
class Spec:
    regex: re.Pattern[str]
    file_type: int | None  # a stat S_IF* value, None for any type
    context: str  # '<<none>>' means: do not label
    exact: bool  # the path has no regex character (libselinux tries these last)
    source: str  # "file:line", for messages


def parse_specs(text: str, source: str) -> list[Spec]:
    """The specifications of one file_contexts file. The patterns are PCRE2; the ones policies
    use are plain enough for Python's re, and a pattern re cannot compile is skipped."""
    specs = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) == 2:
            path, flag, context = fields[0], None, fields[1]
        elif len(fields) == 3 and fields[1] in _FILE_TYPES:
            path, flag, context = fields
        else:
            continue
        try:
            regex = re.compile(f"(?:{path})")
        except re.error:
            continue
        specs.append(
            Spec(
                regex=regex,
                file_type=_FILE_TYPES[flag] if flag else None,
                context=context,
                exact=_META.search(path) is None,
                source=f"{source}:{number}",
            )
        )
    return specs


def parse_subs(text: str) -> list[tuple[str, str]]:
    """(alias, real) prefixes of file_contexts.subs(_dist): alias paths are looked up as real."""
    out = []
    for raw in text.splitlines():
        fields = raw.split()
        if len(fields) == 2 and not raw.lstrip().startswith("#"):
            out.append((fields[0].rstrip("/"), fields[1].rstrip("/")))
    return out


class FileContexts:
    """The labelling rules of one policy; `wanted(path, mode)` is what restorecon would set."""

    def __init__(self, specs: list[Spec], subs: list[tuple[str, str]] | None = None) -> None:
        regex = [s for s in specs if not s.exact]
        exact = [s for s in specs if s.exact]
        self._specs = regex + exact
        self._subs = subs or []

    def substitute(self, path: str) -> str:
        for alias, real in self._subs:
            if path == alias or path.startswith(alias + "/"):
                return real + path[len(alias) :]
        return path

    def lookup(self, path: str, mode: int) -> Spec | None:
        path = self.substitute(posixpath.normpath(path))
        kind = statmod.S_IFMT(mode)
        for spec in reversed(self._specs):
            if spec.file_type is not None and spec.file_type != kind:
                continue
            if spec.regex.fullmatch(path):
                return spec
        return None


def load_file_contexts(image: OfflineImage, policy: str) -> FileContexts:
    """The file_contexts of policy `policy` (e.g. targeted) as the image ships them."""
    base = f"/etc/selinux/{policy}/contexts/files"
    main = f"{base}/file_contexts"
    if not image.exists(main):
        raise AssertionError(f"{main} is missing: the {policy} policy is not installed")
    specs = parse_specs(image.read_text(main), main)
    for extra in ("file_contexts.homedirs", "file_contexts.local"):
        if image.exists(f"{base}/{extra}"):
            specs += parse_specs(image.read_text(f"{base}/{extra}"), f"{base}/{extra}")
    subs: list[tuple[str, str]] = []
    for name in ("file_contexts.subs_dist", "file_contexts.subs"):
        if image.exists(f"{base}/{name}"):
            subs += parse_subs(image.read_text(f"{base}/{name}"))
    return FileContexts(specs, subs)


def mislabel(fc: FileContexts, path: str, st: Stat, current: str | None) -> str | None:
    """Why `path` is not labelled as its policy wants (type field, as restorecon compares
    without -F), or None when it is."""
    spec = fc.lookup(path, st.mode)
    if spec is not None and spec.context == "<<none>>":
        return None  # the policy leaves it alone, as restorecon does
    if spec is None:
        return None if current else f"{path}: unlabeled (and no file_contexts rule names it)"
    want = context_type(spec.context)
    if current is None:
        return f"{path}: unlabeled, policy wants {want} ({spec.source})"
    have = context_type(current)
    if have != want:
        return f"{path}: labelled {have}, policy wants {want} ({spec.source})"
    return None
