"""Which package owns a file, and whether the file is still as the package shipped it.

One model for both families: dpkg (a path from a .list, its md5 from .md5sums or, for a
conffile, from the status file; diversions honoured) and rpm (BASENAMES/DIRNAMES, FILEDIGESTS in
the header's digest algorithm, FILEMODES). Paths are the image's real paths (pkgdb.paths).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pkgdb.dpkg import DPKG_DIR, DpkgDatabase, read_dpkg
from pkgdb.paths import canonical, directory_links
from pkgdb.reader import ImageReader
from pkgdb.rpm import RpmPackage, read_rpmdb


@dataclass(frozen=True)
class OwnedFile:
    """A file as one package installed it."""

    path: str
    package: str  # "name version", for messages
    name: str  # the package name (dpkg key / rpm name)
    digest: str | None = None  # hex, None when the database records none (dpkg: no md5sums)
    algo: str = "md5"
    mode: int | None = None  # rpm's FILEMODES; dpkg keeps modes in the .deb only
    conffile: bool = False
    caps: str = ""  # rpm's FILECAPS (libcap text); dpkg has none (maintainer scripts setcap)

    def matches(self, data: bytes) -> bool:
        """The content has the recorded digest (an algorithm hashlib lacks matches nothing)."""
        if self.digest is None or self.algo not in hashlib.algorithms_available:
            return False
        return hashlib.new(self.algo, data).hexdigest() == self.digest


class PackageFiles:
    """Every file the installed packages own, by real path."""

    def __init__(self, files: Iterable[OwnedFile], kind: str) -> None:
        self.kind = kind  # "dpkg", "rpm" or "none"
        self.by_path: dict[str, list[OwnedFile]] = {}
        for f in files:
            self.by_path.setdefault(f.path, []).append(f)

    def owners(self, path: str) -> list[OwnedFile]:
        return self.by_path.get(path, [])

    def untouched(self, path: str, data: bytes) -> bool:
        """Owned by a package and byte for byte what its database records."""
        return any(f.matches(data) for f in self.owners(path))


def dpkg_files(db: DpkgDatabase, links: Mapping[str, str]) -> PackageFiles:
    """The files of dpkg's installed packages at their real paths, diversions applied: a file
    another package diverted lives at the diversion's target (and a local diversion moves
    every package's copy)."""
    diverted = {canonical(d.path, links): d for d in db.diversions}
    out = []
    for pkg in db.installed():
        sums = {canonical(p, links): m for p, m in db.md5sums.get(pkg.key, {}).items()}
        confs = {canonical(p, links): m for p, m in pkg.conffiles}
        for listed in db.files.get(pkg.key, []):
            path = canonical(listed, links)
            conf = path in confs
            digest = confs[path] if conf else sums.get(path)
            if digest is not None and len(digest) != 32:  # "newconffile", "obsolete" markers
                digest = None
            div = diverted.get(path)
            if div is not None and div.by != pkg.name:
                path = canonical(div.to, links)
            out.append(OwnedFile(path, str(pkg), pkg.name, digest, "md5", None, conf))
    return PackageFiles(out, "dpkg")


def rpm_files(packages: Iterable[RpmPackage], links: Mapping[str, str]) -> PackageFiles:
    """The files of rpm's installed packages at their real paths, with digests and modes."""
    out = [
        OwnedFile(
            path=canonical(f.path, links),
            package=str(pkg),
            name=pkg.name,
            digest=f.digest or None,
            algo=pkg.digest_algo,
            mode=f.mode,
            conffile=f.conffile,
            caps=f.caps,
        )
        for pkg in packages
        for f in pkg.files
    ]
    return PackageFiles(out, "rpm")


def read_package_files(reader: ImageReader, dpkg: DpkgDatabase | None = None) -> PackageFiles:
    """The image's own package database as owned files: dpkg's, else rpm's, else none."""
    links = directory_links(reader)
    if dpkg is None and reader.exists(f"{DPKG_DIR}/status"):
        dpkg = read_dpkg(reader)
    if dpkg is not None and dpkg.packages:
        return dpkg_files(dpkg, links)
    rpms = read_rpmdb(reader)
    if rpms is not None:
        return rpm_files(rpms, links)
    return PackageFiles((), "none")
