"""Read a built image offline, before any boot, for the hygiene checks a boot would hide.

A booted clone cannot show what the image ships: cloud-init deletes baked host keys and
rewrites instance state on first boot, while the private keys and old state still sit in the
artifact. So the image itself is read, without mounting it and without root: the raw disk's
partition table with `sfdisk --json`, the ext4 root with `debugfs -c` at the partition's
offset. XFS or LVM roots need libguestfs (validations/offline_guestfs.py), kept apart because
it boots an appliance (about 25 s under TCG).

Every read goes through one resolver that follows symlinks inside the image (/etc/os-release
is a link to ../usr/lib/os-release): a link is never followed on the build host.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.errors import ImageDefect, InfrastructureError
from core.model import BuildResult
from validations.inode import Stat
from validations.linkwalk import ResolvingReader

EXT4_MAGIC = 0xEF53
_MAX_LINKS = 40
PREFETCH_BATCH = 400  # directories listed per debugfs run


_EA_LINE = re.compile(r"^\s+(\S+) \((\d+)\)(?: = (.*))?$")


def _ea_value(shown: str | None, size: int) -> bytes:
    """An attribute value as debugfs's ea_list prints it (debugfs/xattrs.c): a C-escaped
    quoted string when more than 7/8 of its bytes are printable, else hex bytes."""
    shown = (shown or "").rstrip()
    if shown.startswith('"') and shown.endswith('"'):
        raw = shown[1:-1].encode("latin-1", "replace").decode("unicode_escape")
        return raw.encode("latin-1", "replace")[:size]
    try:
        return bytes.fromhex(shown)[:size]
    except ValueError:
        return shown.encode()[:size]


class OfflineImage(Protocol):
    """What validations/test_hygiene.py may call; both readers implement it."""

    def exists(self, path: str) -> bool: ...
    def lexists(self, path: str) -> bool: ...
    def read_text(self, path: str) -> str: ...
    def read_bytes(self, path: str) -> bytes: ...
    def listdir(self, path: str) -> list[str]: ...
    def stat(self, path: str) -> Stat: ...
    def lstat(self, path: str) -> Stat: ...
    def readlink(self, path: str) -> str: ...
    def walk(self, top: str) -> Iterator[tuple[str, Stat]]: ...
    def export(self, top: str, dest: Path) -> Path: ...
    def read_files(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]: ...
    def getxattrs(self, paths: Iterable[str], name: str) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class Partition:
    number: int
    offset: int  # bytes
    size: int  # bytes
    name: str
    type: str


def partitions(raw: Path) -> list[Partition]:
    """The partitions of a raw disk, [] when it has no partition table (a bare filesystem)."""
    proc = subprocess.run(
        ["sfdisk", "--json", str(raw)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    table = json.loads(proc.stdout)["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    out = []
    for i, p in enumerate(table.get("partitions", []), start=1):
        out.append(
            Partition(
                number=i,
                offset=int(p["start"]) * sector,
                size=int(p["size"]) * sector,
                name=str(p.get("name", "")),
                type=str(p.get("type", "")),
            )
        )
    return out


def _superblock(raw: Path, offset: int) -> tuple[bool, str]:
    """(is ext2/3/4, volume label) of the filesystem starting at offset."""
    with raw.open("rb") as fh:
        fh.seek(offset + 1024)
        sb = fh.read(256)
    if len(sb) < 136:
        return False, ""
    magic = int.from_bytes(sb[56:58], "little")
    label = sb[120:136].split(b"\0", 1)[0].decode("utf-8", "replace")
    return magic == EXT4_MAGIC, label


def _foreign_fs(raw: Path, offset: int) -> str | None:
    """Name a root filesystem debugfs cannot read, so the message says what to install."""
    with raw.open("rb") as fh:
        fh.seek(offset)
        head = fh.read(1024)
    if head[:4] == b"XFSB":
        return "XFS"
    if b"LABELONE" in head[512:544] or head[:8] == b"LABELONE":
        return "LVM"
    return None


def find_root(raw: Path) -> int:
    """Byte offset of the root ext4 filesystem: the one labelled rootfs/root, else the largest."""
    parts = partitions(raw)
    if not parts:
        ok, _ = _superblock(raw, 0)
        if ok:
            return 0
        raise ImageDefect(f"{raw}: no partition table and no ext4 filesystem at its start")
    ext4: list[tuple[Partition, str]] = []
    foreign: list[str] = []
    for part in parts:
        ok, label = _superblock(raw, part.offset)
        if ok:
            ext4.append((part, label))
        elif kind := _foreign_fs(raw, part.offset):
            foreign.append(f"partition {part.number}: {kind}")
    if not ext4:
        if foreign:
            raise NotExt4Error(
                f"{raw}: no ext4 root ({', '.join(foreign)}); reading it needs libguestfs "
                "(apt-get install python3-guestfs linux-image-amd64)"
            )
        raise ImageDefect(f"{raw}: none of its {len(parts)} partitions holds an ext4 filesystem")
    for part, label in ext4:
        if label in ("rootfs", "root", "cloudimg-rootfs") or part.name in ("rootfs", "root"):
            return part.offset
    return max(ext4, key=lambda pl: pl[0].size)[0].offset


class NotExt4Error(InfrastructureError):
    """The root is XFS or LVM: the libguestfs reader is needed."""


class Ext4Image(ResolvingReader):
    """Read-only access to an ext4 filesystem inside a raw disk, through debugfs -c.

    Directory listings are cached (one debugfs call per directory); symlinks are resolved
    inside the image, relative to its root.
    """

    def __init__(self, raw: Path, offset: int) -> None:
        self.raw = raw
        self.offset = offset
        self._spec = f"{raw}?offset={offset}" if offset else str(raw)
        self.where = f"image {raw.name}"
        self._dirs: dict[str, dict[str, Stat]] = {}

    # -- debugfs -----------------------------------------------------------------------------
    def _debugfs(self, request: str) -> bytes:
        proc = subprocess.run(
            ["debugfs", "-c", "-R", request, self._spec], capture_output=True, check=False
        )
        err = proc.stderr.decode("utf-8", "replace")
        problems = [
            line
            for line in err.splitlines()
            if line.strip() and not line.startswith("debugfs ") and "catastrophic mode" not in line
        ]
        if proc.returncode != 0 or problems:
            raise InfrastructureError(
                f"debugfs {request!r} on {self._spec} failed: {'; '.join(problems) or err.strip()}"
            )
        return proc.stdout

    @staticmethod
    def _quote(path: str) -> str:
        if '"' in path:
            raise ValueError(f"path with a double quote cannot be passed to debugfs: {path!r}")
        return f'"{path}"'

    @staticmethod
    def _parse_listing(out: str) -> dict[str, Stat]:
        entries: dict[str, Stat] = {}
        for line in out.splitlines():
            # /inode/mode/uid/gid/name/size/
            fields = line.split("/")
            if len(fields) < 7 or not fields[1].isdigit():
                continue
            name = "/".join(fields[5:-2])
            if name in (".", "..") or fields[1] == "0":
                continue
            entries[name] = Stat(
                mode=int(fields[2], 8),
                uid=int(fields[3]),
                gid=int(fields[4]),
                size=int(fields[-2] or 0),
                ino=int(fields[1]),
            )
        return entries

    def _listing(self, real_dir: str) -> dict[str, Stat]:
        if real_dir not in self._dirs:
            out = self._debugfs(f"ls -p {self._quote(real_dir)}").decode("utf-8", "surrogateescape")
            self._dirs[real_dir] = self._parse_listing(out)
        return self._dirs[real_dir]

    def _prefetch(self, real_dirs: list[str]) -> None:
        """List many directories with one debugfs run (a whole tree in a few runs, where one
        run per directory would take minutes on a root filesystem)."""
        todo = [d for d in real_dirs if d not in self._dirs and '"' not in d]
        for i in range(0, len(todo), PREFETCH_BATCH):
            chunk = todo[i : i + PREFETCH_BATCH]
            with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as script:
                script.write("".join(f"ls -p {self._quote(d)}\n" for d in chunk))
                script.flush()
                proc = subprocess.run(
                    ["debugfs", "-c", "-f", script.name, self._spec],
                    capture_output=True,
                    check=False,
                )
            if proc.returncode != 0:
                raise InfrastructureError(
                    f"debugfs listing on {self._spec} failed (rc {proc.returncode})"
                )
            sections: dict[str, list[str]] = {}
            current: list[str] | None = None
            for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
                if line.startswith("debugfs: ls -p "):
                    current = sections.setdefault(line[len("debugfs: ls -p ") :].strip('"'), [])
                elif current is not None:
                    current.append(line)
            for d in chunk:
                self._dirs[d] = self._parse_listing("\n".join(sections.get(d, [])))

    # -- resolution --------------------------------------------------------------------------
    def _entry(self, real_dir: str, name: str) -> Stat | None:
        return self._listing(real_dir).get(name)

    def _readlink_real(self, real: str) -> str:
        out = self._debugfs(f"stat {self._quote(real)}").decode("utf-8", "replace")
        for line in out.splitlines():
            if line.startswith("Fast link dest:"):
                return line.split(":", 1)[1].strip().strip('"')
        return self._debugfs(f"cat {self._quote(real)}").decode("utf-8", "replace")

    def _stat_real(self, real: str) -> Stat:
        if real == "/":
            out = self._debugfs('ls -p "/"').decode("utf-8", "replace")  # "." of the root
            for line in out.splitlines():
                f = line.split("/")
                if len(f) >= 7 and f[5] == ".":
                    return Stat(int(f[2], 8), int(f[3]), int(f[4]), 0)
            raise InfrastructureError(f"debugfs could not stat / in {self._spec}")
        return self._listing(posixpath.dirname(real))[posixpath.basename(real)]

    # -- the interface (exists, lexists, stat, lstat: ResolvingReader) -----------------------

    def getxattr(self, path: str, name: str) -> bytes | None:
        """An extended attribute of `path` itself (validations/selinux.py), None if unset."""
        real = self._quote(self._must(path, follow=False))
        listing = self._debugfs(f"ea_list {real}").decode("utf-8", "replace")
        if not re.search(rf"^\s+{re.escape(name)} \(\d+\)", listing, re.MULTILINE):
            return None
        value = self._debugfs(f"ea_get -V {real} {name}")
        return value[:-1] if value.endswith(b"\n") else value  # debugfs adds a newline

    def getxattrs(self, paths: Iterable[str], name: str) -> dict[str, bytes]:
        """The attribute `name` of each of `paths` that has it (links not followed), from one
        debugfs run addressed by inode number, so no file name can escape it: every file of a
        root filesystem in about a second (validations/setuid.py reads file capabilities)."""
        todo: dict[int, str] = {}
        for path in paths:
            folder, base = posixpath.split(path)
            st = self._dirs.get(folder, {}).get(base)  # a path walk() gave: its folder is real
            if st is None:
                real = self._resolve(path, follow_last=False)
                st = self._stat_real(real) if real not in (None, "/") else None
            if st is not None and st.ino:
                todo[st.ino] = path
        found: dict[str, bytes] = {}
        if not todo:
            return found
        with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as script:
            script.write("".join(f"ea_list <{ino}>\n" for ino in todo))
            script.flush()
            proc = subprocess.run(
                ["debugfs", "-c", "-f", script.name, self._spec], capture_output=True, check=False
            )
        if proc.returncode != 0:
            raise InfrastructureError(f"debugfs ea_list on {self._spec} failed ({proc.returncode})")
        current: str | None = None
        for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
            if m := re.fullmatch(r"debugfs: ea_list <(\d+)>", line):
                current = todo.get(int(m.group(1)))
            elif current is not None and (m := _EA_LINE.match(line)) and m.group(1) == name:
                found[current] = _ea_value(m.group(3), int(m.group(2)))
        return found

    def readlink(self, path: str) -> str:
        real = self._must(path, follow=False)
        if not self._stat_real(real).is_symlink:
            raise OSError(f"{path} is not a symbolic link")
        return self._readlink_real(real)

    def listdir(self, path: str) -> list[str]:
        real = self._must(path)
        if not self._stat_real(real).is_dir:
            raise NotADirectoryError(path)
        return sorted(self._listing(real))

    def read_bytes(self, path: str) -> bytes:
        real = self._must(path)
        st = self._stat_real(real)
        if st.is_dir:
            raise IsADirectoryError(path)
        return self._debugfs(f"cat {self._quote(real)}")

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", "replace")

    def walk(self, top: str) -> Iterator[tuple[str, Stat]]:
        """Every entry under `top` (links not followed), depth first: (path, lstat)."""
        real = self._must(top)
        level = [real]
        while level:  # list the tree level by level, a few debugfs runs in all
            self._prefetch(level)
            level = [
                posixpath.join(d, n) for d in level for n, st in self._dirs.get(d, {}).items()
                if st.is_dir
            ]  # fmt: skip
        yield from self._walk_cached(top, real)

    def _walk_cached(self, top: str, real: str) -> Iterator[tuple[str, Stat]]:
        for name, st in sorted(self._listing(real).items()):
            child = posixpath.join(top, name)
            yield child, st
            if st.is_dir:
                yield from self._walk_cached(child, posixpath.join(real, name))

    def read_files(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """(path, content) of each regular file of `paths` (links are not followed; anything
        else is skipped), streamed from one debugfs run: a whole root filesystem in seconds,
        where a run per file would take minutes. debugfs echoes each `cat` before the bytes,
        and the listing gives each file's size, so the stream splits without guessing; a file
        is handed out only once the next echo (or the end) proves its bytes were all its own."""
        todo = []
        for path in paths:
            folder, name = posixpath.split(path)
            st = self._dirs.get(folder, {}).get(name)  # a path walk() gave: its folder is real
            real: str | None = path
            if st is None:
                real = self._resolve(path, follow_last=False)
                st = self._stat_real(real) if real is not None else None
            if st is not None and st.is_file and real and '"' not in real and "\n" not in real:
                todo.append((path, real, st.size))
        if not todo:
            return
        with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as script:
            script.write("".join(f"cat {self._quote(real)}\n" for _, real, _ in todo))
            script.flush()
            with subprocess.Popen(
                ["debugfs", "-c", "-f", script.name, self._spec],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=1 << 20,
            ) as proc:
                assert proc.stdout is not None
                try:
                    pending: tuple[str, bytes] | None = None  # yielded once the next echo is seen
                    for path, real, size in todo:
                        echo = proc.stdout.readline()
                        if echo != f"debugfs: cat {self._quote(real)}\n".encode(
                            "utf-8", "surrogateescape"
                        ):
                            raise InfrastructureError(
                                f"debugfs on {self._spec} lost step before {real}: {echo[:80]!r}"
                            )
                        if pending is not None:
                            yield pending
                        data = proc.stdout.read(size)
                        if len(data) != size:
                            raise InfrastructureError(f"debugfs on {self._spec}: {real} cut short")
                        pending = (path, data)
                    if proc.stdout.read(1):
                        raise InfrastructureError(f"debugfs on {self._spec}: output after {real}")
                    if pending is not None:
                        yield pending
                finally:
                    proc.kill()

    def export(self, top: str, dest: Path) -> Path:
        """Copy the tree `top` out of the image into `dest` (one debugfs run); returns the
        copy's path. Links are copied as links: read the copy without following them."""
        real = self._must(top)
        dest.mkdir(parents=True, exist_ok=True)
        if self._stat_real(real).is_dir:
            self._debugfs(f"rdump {self._quote(real)} {self._quote(str(dest))}")
        else:
            self._debugfs(
                f"dump {self._quote(real)} {self._quote(str(dest / posixpath.basename(real)))}"
            )
        return dest / posixpath.basename(real.rstrip("/") or "root")


def file_text(image: OfflineImage, path: str) -> str | None:
    """A regular file's text, or None when it is missing, not a file or unreadable: the reader
    the pure judges take (pam, tlsclients, opensslconf, xendrivers)."""
    try:
        if image.exists(path) and image.stat(path).is_file:
            return image.read_text(path)
    except (OSError, ValueError):
        return None
    return None


def folder_names(image: OfflineImage, path: str) -> list[str]:
    """A folder's entries, or [] when it is missing or not a folder."""
    return image.listdir(path) if image.exists(path) and image.stat(path).is_dir else []


def _to_raw(build: BuildResult, workdir: Path) -> Path:
    """A raw disk for the artifact: the artifact itself when raw, else a converted temp copy."""
    if not build.artifact:
        raise ImageDefect(f"{build.os_name}: the build produced no artifact to read")
    art = Path(build.artifact)
    if not art.is_file():
        raise ImageDefect(f"{build.os_name}: artifact {art} does not exist")
    fmt = (build.artifact_format or art.suffix.lstrip(".")).lower()
    if fmt in ("raw", "img", "ext4", ""):
        return art
    raw = workdir / f"{build.os_name}.raw"
    if fmt == "xva":
        from diskformats.xva.reader import xva_to_raw

        xva_to_raw(art, raw)
        return raw
    if fmt == "qcow2":
        if not shutil.which("qemu-img"):
            raise InfrastructureError("qemu-img is missing: apt-get install qemu-utils")
        subprocess.run(
            ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(art), str(raw)],
            check=True,
            capture_output=True,
        )
        return raw
    raise ImageDefect(f"{build.os_name}: cannot read artifact format {fmt!r} offline ({art})")


@contextlib.contextmanager
def open_image(build: BuildResult, workdir: Path) -> Iterator[OfflineImage]:
    """Open the build's artifact read-only; temporary conversions are removed on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    raw = _to_raw(build, workdir)
    try:
        try:
            offset = find_root(raw)
        except NotExt4Error:
            from validations.offline_guestfs import open_guestfs

            with open_guestfs(raw) as img:
                yield img
            return
        yield Ext4Image(raw, offset)
    finally:
        if raw != Path(build.artifact or ""):
            raw.unlink(missing_ok=True)
