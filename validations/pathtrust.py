"""Who can change what root runs: a path, every folder above it and every link on the way,
walked the way the kernel walks it, and judged by owner and mode.

The policy (docs/checks/persistence.md): a path root executes or reads to decide what
to execute is safe only if every directory the kernel traverses to reach it, and the file
itself, are owned by uid 0 and writable by neither group nor others. A world-writable folder
with the sticky bit (/tmp) is not safe either: nobody can replace another's file there, but
anyone can plant the file before it exists. A symbolic link's own mode means nothing (a link
cannot be rewritten, only replaced by whoever can write its folder, which is judged); its
target is walked in turn. The kernel's pseudo filesystems (/proc, /sys, /dev) hold no files
anyone plants, and a device at the end of a walk (a unit masked to /dev/null) is not judged.

`walk` is shipped to the clone as source (`GUEST_WALKER`), where it runs with `os.lstat` and
records every inode it looks at; the checks replay the same walk over that record, so both
sides visit exactly the same inodes. Offline, it runs over the image reader's lstat.
"""

from __future__ import annotations

import functools
import inspect
import posixpath
import stat as statmod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from validations.inode import Stat

PSEUDO = ("/proc/", "/sys/", "/dev/")

# Folders that are group-writable by design and safe because the program reading them checks
# ownership itself: (path, owner uid, group name, mode, why). The group is matched by name
# through the image's /etc/group, so a gid that means something else elsewhere is not excused.
EXCEPTIONS: tuple[tuple[str, int, str, int, str], ...] = (
    (
        "/var/spool/cron/crontabs",
        0,
        "crontab",
        0o1730,
        "Debian cron's spool: only the setgid crontab(1) writes there, each user only their own "
        "file, and cron refuses a crontab not owned by the user it is named after",
    ),
)


def walk(
    path: str, mode_of: Callable[[str], int | None], readlink: Callable[[str], str]
) -> tuple[list[tuple[str, str]], str | None]:
    """Every inode the kernel looks at to open `path`, in order, as (link-free path, role):
    role "dir" for a folder traversed, "link" for a symbolic link followed, "end" for what
    the path names. The second value is the first missing component (None when it exists).

    `mode_of(p)` is the lstat st_mode of a link-free path, None when absent. Self-contained
    (posixpath and stat only): GUEST_WALKER runs this very source on the clone."""
    if mode_of("/") is None:
        return [], "/"
    seen = [("/", "dir")]
    todo = [c for c in path.split("/") if c and c != "."]
    done = "/"
    links = 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            done = posixpath.dirname(done) or "/"
            continue
        here = posixpath.join(done, name)
        mode = mode_of(here)
        if mode is None:
            return seen, here
        if statmod.S_ISLNK(mode):
            links += 1
            if links > 40:
                return seen, here  # ELOOP: nothing is opened
            seen.append((here, "link"))
            target = readlink(here)
            if target.startswith("/"):
                done = "/"
            todo = [c for c in target.split("/") if c and c != "."] + todo
            continue
        if todo and not statmod.S_ISDIR(mode):
            seen.append((here, "end"))
            return seen, posixpath.join(here, todo[0])  # ENOTDIR
        seen.append((here, "dir" if todo else "end"))
        done = here
    return seen, None


@dataclass(frozen=True)
class Finding:
    """One unsafe inode on the way to a path root uses."""

    what: str  # what runs it, e.g. "ssh.service ExecStartPre"
    path: str  # the path as root names it
    bad: str  # the inode that makes it unsafe (the path itself, a folder, a link target)
    stat: Stat | None
    why: str

    def __str__(self) -> str:
        via = "" if self.bad == self.path else f" via {self.bad}"
        if self.stat is None:
            return f"{self.what}: {self.path}{via} ({self.why})"
        st = self.stat
        return f"{self.what}: {self.path}{via} ({st.uid}:{st.gid}, {st.perms:04o}, {self.why})"


def unsafe(
    st: Stat, path: str = "", group_name: Callable[[int], str | None] = lambda g: None
) -> str | None:
    """Why an inode on the way is unsafe, None when it is not (links and devices: never)."""
    if st.is_symlink or not (st.is_dir or st.is_file):
        return None
    for where, uid, group, mode, _why in EXCEPTIONS:
        if path == where and st.uid == uid and st.perms == mode and group_name(st.gid) == group:
            return None
    if st.uid != 0:
        return f"owned by uid {st.uid}"
    if st.mode & 0o002:
        if st.is_dir and st.mode & 0o1000:
            return "writable by others; the sticky bit does not stop anyone planting the file first"
        return "writable by others"
    if st.mode & 0o020:
        return f"writable by group {st.gid}"
    return None


class Inodes:
    """lstat and readlink over some source (the clone's record, an offline image), with the
    judgement of a path on top."""

    def __init__(
        self,
        lstat: Callable[[str], Stat | None],
        readlink: Callable[[str], str],
        group_name: Callable[[int], str | None] = lambda g: None,
    ) -> None:
        self._lstat = functools.cache(lstat)
        self._readlink = functools.cache(readlink)
        self.group_name = group_name

    def lstat(self, path: str) -> Stat | None:
        return self._lstat(path)

    def _mode(self, path: str) -> int | None:
        st = self._lstat(path)
        return None if st is None else st.mode

    def resolve(self, path: str) -> tuple[list[tuple[str, str]], str | None]:
        return walk(path, self._mode, self._readlink)

    def kind(self, path: str) -> str | None:
        """ "file", "dir", "other" for what `path` names after links, None when missing
        (the pseudo filesystems: "other")."""
        if path.startswith(PSEUDO):
            return "other"
        steps, missing = self.resolve(path)
        if missing is not None:
            return None
        st = self._lstat(steps[-1][0])
        if st is None:
            return None
        return "file" if st.is_file else "dir" if st.is_dir else "other"

    def judge(self, what: str, path: str, must_exist: bool = False) -> list[Finding]:
        """The unsafe inodes on the way to `path` (the first one only: it is enough to own
        everything below). A missing path is judged by the folders that exist: whoever can
        write the last of them can create it. With `must_exist`, a missing path is reported
        too (a file root is told to run that is not there)."""
        if path.startswith(PSEUDO) or not path.startswith("/"):
            return []
        steps, missing = self.resolve(path)
        for where, role in steps:
            st = self._lstat(where)
            if st is None or role == "link":
                continue
            why = unsafe(st, where, self.group_name)
            if why is not None:
                if missing is not None:
                    why = f"not there yet, and {why}"
                return [Finding(what, path, where, st, why)]
        if missing is not None and must_exist:
            return [Finding(what, path, missing, None, "does not exist")]
        return []

    def judge_all(self, what: str, paths: Iterable[str]) -> list[Finding]:
        out: list[Finding] = []
        for p in paths:
            out += self.judge(what, p)
        return out


# -- the clone's side ---------------------------------------------------------------------------

# Absolute paths in free text (systemctl show, listings, PATH values): split on blanks and on
# the separators those texts use. The checks find every path they judge in the text the same
# way, so every one of them is in the clone's record.
TOKEN = r"(?<![\w.~$])/[^\s\"'`;:,=()\[\]{}<>|&*?]*"

_GUEST_MAIN = """
import json, os, posixpath, re, stat as statmod, sys

record = {}

def mode_of(p):
    if p in record:
        return None if record[p] is None else record[p][0]
    try:
        st = os.lstat(p)
    except OSError:
        record[p] = None
        return None
    target = os.readlink(p) if statmod.S_ISLNK(st.st_mode) else None
    record[p] = [st.st_mode, st.st_uid, st.st_gid, target]
    return st.st_mode

def readlink(p):
    return record[p][3]

text = sys.stdin.read()
paths = set(re.findall(TOKEN, text))
found = re.search(r"^search\t(.*)$", text, re.M)
search = [d for d in found.group(1).split(":") if d.startswith("/")] if found else []
for name in set(re.findall(r"\\bpath=([^/\\s;][^\\s;]*)", text)):
    paths.update(posixpath.join(d, name) for d in search)
for p in sorted(paths):
    if not p.startswith(PSEUDO):
        walk(p, mode_of, readlink)
files = {}
for f in set(re.findall(r"^EnvironmentFiles=(.+?) \\(ignore_errors=", text, re.M)):
    try:
        with open(f, encoding="utf-8", errors="replace") as fh:
            files[f] = fh.read(65536)
    except OSError:
        pass
json.dump({"inodes": record, "files": files}, sys.stdout)
"""


def guest_walker() -> str:
    """The Python program the clone runs: reads text on stdin, walks every absolute path in it
    (and `path=NAME` in each folder of a `search<TAB>PATH` line), prints {"inodes": {path:
    [mode, uid, gid, link target] or null}, "files": {environment file: text}}."""
    return "\n".join(
        [
            "from __future__ import annotations",
            f"TOKEN = {TOKEN!r}",
            f"PSEUDO = {PSEUDO!r}",
            "import posixpath, stat as statmod",
            inspect.getsource(walk),
            _GUEST_MAIN,
        ]
    )


def recorded(record: dict[str, list[object] | None]) -> Inodes:
    """Inodes over the clone's record; a path the clone did not look at is an error, never
    taken as absent (the checks and the walker would disagree on what to judge)."""

    def lstat(path: str) -> Stat | None:
        if path not in record:
            raise AssertionError(
                f"the clone's walker did not look at {path}: the checks and the walker "
                "disagree on which paths to judge"
            )
        row = record[path]
        if row is None:
            return None
        mode, uid, gid = (int(str(v)) for v in row[:3])
        return Stat(mode=mode, uid=uid, gid=gid, size=0)

    def readlink(path: str) -> str:
        row = record.get(path)
        if not row or row[3] is None:
            raise AssertionError(f"the clone's walker has no link target for {path}")
        return str(row[3])

    return Inodes(lstat, readlink)
