"""dpkg's database, read offline: installed packages, their files, md5sums and conffiles,
statoverrides and diversions.

Parsed with python-debian (deb822) from /var/lib/dpkg: `status`, `info/<pkg>[:arch].list` and
`.md5sums`, `statoverride`, `diversions`. The info folder (a thousand files on a small server)
is copied out of the image in one export, not read file by file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from debian import deb822

from core.errors import ImageDefect
from core.ownership import scratch
from pkgdb.reader import ImageReader

DPKG_DIR = "/var/lib/dpkg"
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


@dataclass(frozen=True)
class DebPackage:
    """One stanza of dpkg's status file."""

    name: str
    arch: str
    version: str
    source: str  # the source package (the name itself when the stanza has no Source)
    source_version: str
    status: str  # "install ok installed", "deinstall ok config-files", ...
    multi_arch: str = ""
    conffiles: tuple[tuple[str, str], ...] = ()  # (path, md5) as dpkg recorded them

    @property
    def installed(self) -> bool:
        """Unpacked and configured: its files are on the disk (not only its conffiles)."""
        return self.status.split()[-1:] == ["installed"]

    @property
    def key(self) -> str:
        """How dpkg names its info files: `name:arch` for Multi-Arch: same, else `name`."""
        return f"{self.name}:{self.arch}" if self.multi_arch == "same" else self.name

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class Diversion:
    """dpkg-divert: another package's `path` is installed as `to`; `by` is the package that
    diverted it (":" for a local diversion made by the administrator)."""

    path: str
    to: str
    by: str


@dataclass(frozen=True)
class StatOverride:
    """dpkg-statoverride: `path` gets this owner, group and mode whatever the package ships."""

    path: str
    user: str
    group: str
    mode: int


@dataclass
class DpkgDatabase:
    packages: list[DebPackage]
    files: dict[str, list[str]] = field(default_factory=dict)  # package key -> listed paths
    md5sums: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> path -> md5
    diversions: list[Diversion] = field(default_factory=list)
    statoverrides: dict[str, StatOverride] = field(default_factory=dict)
    status: bytes = b""  # the status file as read: apt's own tools read it too (pkgdb.aptpolicy)
    foreign_arches: list[str] = field(default_factory=list)  # dpkg --add-architecture

    def installed(self) -> list[DebPackage]:
        return [p for p in self.packages if p.installed]

    def package(self, key: str) -> DebPackage | None:
        return next((p for p in self.packages if p.key == key), None)

    def native_arch(self) -> str:
        """The image's architecture: that of its dpkg package."""
        dpkg = next((p for p in self.installed() if p.name == "dpkg"), None)
        if dpkg is None:
            raise ImageDefect("dpkg is not installed in the image: no Debian package database")
        return dpkg.arch


def parse_status(text: str) -> list[DebPackage]:
    """Every stanza of a dpkg status file."""
    out = []
    for para in deb822.Deb822.iter_paragraphs(text.splitlines(keepends=True)):
        if "Package" not in para:
            continue
        version = para.get("Version", "")
        source, source_version = para["Package"], version
        if m := _SOURCE.match(para.get("Source", "").strip()):
            source, source_version = m.group(1), m.group(2) or version
        conffiles = []
        for line in para.get("Conffiles", "").splitlines():
            fields = line.split()
            if len(fields) >= 2:
                conffiles.append((fields[0], fields[1]))
        out.append(
            DebPackage(
                name=para["Package"],
                arch=para.get("Architecture", ""),
                version=version,
                source=source,
                source_version=source_version,
                status=para.get("Status", ""),
                multi_arch=para.get("Multi-Arch", ""),
                conffiles=tuple(conffiles),
            )
        )
    return out


def parse_list(text: str) -> list[str]:
    """An info/<pkg>.list: one path per line (directories included)."""
    return [line for line in text.splitlines() if line.startswith("/")]


def parse_md5sums(text: str) -> dict[str, str]:
    """An info/<pkg>.md5sums: `md5  relative/path` lines, as absolute path -> md5."""
    out = {}
    for line in text.splitlines():
        md5, _, rel = line.partition(" ")
        rel = rel.lstrip(" ")
        if len(md5) == 32 and rel:
            out["/" + rel.lstrip("/")] = md5.lower()
    return out


def parse_diversions(text: str) -> list[Diversion]:
    """dpkg's diversions file: three lines per diversion (from, to, package)."""
    lines = text.splitlines()
    return [Diversion(lines[i], lines[i + 1], lines[i + 2]) for i in range(0, len(lines) - 2, 3)]


def parse_statoverride(text: str) -> dict[str, StatOverride]:
    """dpkg's statoverride file: `user group mode path` lines, mode in octal."""
    out = {}
    for line in text.splitlines():
        fields = line.split(None, 3)
        if len(fields) == 4 and re.fullmatch(r"[0-7]{3,4}", fields[2]):
            user, group, mode, path = fields
            out[path] = StatOverride(path, user, group, int(mode, 8))
    return out


def _read(reader: ImageReader, path: str) -> str:
    return reader.read_bytes(path).decode("utf-8", "surrogateescape") if reader.exists(path) else ""


def read_info(
    info: Path, packages: Iterable[DebPackage]
) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """(.list paths, .md5sums) of each package, from a local copy of dpkg's info folder."""
    keys = {p.key for p in packages}
    files: dict[str, list[str]] = {}
    md5sums: dict[str, dict[str, str]] = {}
    for entry in info.iterdir() if info.is_dir() else ():
        stem, _, kind = entry.name.rpartition(".")
        if stem not in keys or kind not in ("list", "md5sums"):
            continue
        text = entry.read_bytes().decode("utf-8", "surrogateescape")
        if kind == "list":
            files[stem] = parse_list(text)
        else:
            md5sums[stem] = parse_md5sums(text)
    return files, md5sums


def read_dpkg(reader: ImageReader) -> DpkgDatabase:
    """The image's dpkg database (an image without one yields an empty database)."""
    status = _read(reader, f"{DPKG_DIR}/status")
    packages = parse_status(status)
    db = DpkgDatabase(
        packages=packages,
        diversions=parse_diversions(_read(reader, f"{DPKG_DIR}/diversions")),
        statoverrides=parse_statoverride(_read(reader, f"{DPKG_DIR}/statoverride")),
        status=status.encode("utf-8", "surrogateescape"),
        foreign_arches=_read(reader, f"{DPKG_DIR}/arch").split(),
    )
    if reader.exists(f"{DPKG_DIR}/info"):
        with scratch("xcpng-dpkg-info") as tmp:
            info = reader.export(f"{DPKG_DIR}/info", tmp)
            db.files, db.md5sums = read_info(info, packages)
    return db
