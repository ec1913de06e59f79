"""Pending security updates, computed offline: the image's installed packages against its
distribution's security suite, by dpkg's version ordering.

The suite is `<codename>-security` (Debian's debian-security archive, Ubuntu's security
pocket). When the image's own sources lack it, the distribution's is compared all the same and
the report says the sources lack it: a clone of that image would never receive the updates.
A package is pending when the security suite has a higher version of it for its architecture
(or `all`); the comparison is python-debian's `Version`, dpkg's own rules (epochs, `~`).
Updates the image would refuse to install (dpkg holds, apt pins) are found by pkgdb.aptpolicy
and reported beside them (`SecurityReport.held`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from debian.debian_support import Version

from core.errors import ImageDefect
from pkgdb.aptpolicy import held_by_dpkg, held_by_pins
from pkgdb.archive import Archive, PackageIndex
from pkgdb.dpkg import DebPackage, DpkgDatabase
from pkgdb.keys import KeyStore
from pkgdb.osrelease import read_os_release
from pkgdb.reader import ImageReader
from pkgdb.sources import AptSource, read_sources

# The distribution's own security archive, for images whose sources lack it.
SECURITY_ARCHIVES = {
    "debian": "http://deb.debian.org/debian-security",
    "ubuntu": "http://security.ubuntu.com/ubuntu",
}
MISSING = "the distribution's security suite, missing from the image's apt sources"


@dataclass
class SecurityReport:
    pending: list[str]  # "name installed -> candidate (suite)"
    suites: list[str]  # the URLs compared against
    notes: list[str] = field(default_factory=list)  # e.g. the sources lack the suite
    signature: list[str] = field(default_factory=list)  # how each InRelease was verified
    held: list[str] = field(default_factory=list)  # updates apt would not install (pins, holds)


def security_sources(
    sources: list[AptSource], distro: str, codename: str
) -> tuple[list[AptSource], str]:
    """The image's `<codename>-security` sources, or the distribution's (with a note why)."""
    suite = f"{codename}-security"
    own = [s for s in sources if s.suite.rstrip("/") == suite]
    if own:
        return own, ""
    if distro not in SECURITY_ARCHIVES:
        raise ImageDefect(f"no {suite} in the image's apt sources, and {distro!r} has no known one")
    base = [s for s in sources if s.suite == codename]
    template = base[0] if base else AptSource(uri="", suite="", components=("main",))
    derived = replace(
        template, uri=SECURITY_ARCHIVES[distro], suite=suite, trusted=False, origin=MISSING
    )
    return [derived], (
        f"no {suite} in the image's apt sources: its clones would never receive security "
        f"updates (compared against {derived.base} all the same)"
    )


def release_of_sources(sources: list[AptSource]) -> str:
    """The release apt follows when os-release names none (identity is identity-os-release's
    concern; the updates a clone gets follow its sources): the suite of the sources whose
    `<suite>-security` or `<suite>-updates` sibling is also there, else the only bare suite."""
    suites = {s.suite.rstrip("/") for s in sources}
    bare = sorted(x for x in suites if "-" not in x and "/" not in x)
    paired = [x for x in bare if f"{x}-security" in suites or f"{x}-updates" in suites]
    if len(paired) == 1:
        return paired[0]
    return bare[0] if len(bare) == 1 else ""


def pending_updates(installed: Iterable[DebPackage], indexes: Iterable[PackageIndex]) -> list[str]:
    """One line per installed package that a security index has a newer version of."""
    indexes = list(indexes)
    out = []
    for pkg in installed:
        best: tuple[Version, str] | None = None
        for index in indexes:
            for entry in index.entries(pkg.name):
                if entry.arch not in (pkg.arch, "all"):
                    continue
                candidate = Version(entry.version)
                if best is None or candidate > best[0]:
                    best = (candidate, index.suite)
        if best is not None and best[0] > Version(pkg.version):
            out.append(f"{pkg.name} {pkg.version} -> {best[0]} ({best[1]})")
    return sorted(out)


def _security_suites(reader: ImageReader) -> tuple[list[AptSource], list[AptSource], str]:
    """(every binary source of the image, the security sources to compare against, a note
    when the image's own sources lack the suite)."""
    release = read_os_release(reader)
    all_sources = read_sources(reader)
    distro = release.get("ID", "")
    codename = release.get("VERSION_CODENAME", "") or release_of_sources(all_sources)
    if not codename:
        raise ImageDefect(
            "neither os-release's VERSION_CODENAME nor the apt sources name the release: "
            "the security suite is unknown"
        )
    sources, note = security_sources(all_sources, distro, codename)
    return all_sources, sources, note


def _indexes(
    reader: ImageReader, db: DpkgDatabase, archive: Archive, sources: list[AptSource], note: str
) -> tuple[list[PackageIndex], SecurityReport]:
    arch = db.native_arch()
    arches = sorted({arch} | {p.arch for p in db.installed()} - {"all"})
    report = SecurityReport(pending=[], suites=[], notes=[note] if note else [])
    indexes = []
    keystore = KeyStore(reader)
    for source in sources:
        keys = keystore.for_source(source)
        for component in source.components or ("",):
            for a in [x for x in arches if not source.arches or x in source.arches]:
                indexes.append(archive.index(source, component, a, keys))
        rel = archive.release(source, keys)
        report.suites.append(rel.url)
        report.signature.append(f"{rel.url}: {rel.signature}")
    return indexes, report


def security_indexes(
    reader: ImageReader, db: DpkgDatabase, archive: Archive
) -> tuple[list[PackageIndex], SecurityReport]:
    """The security suite's Packages indexes for the image's architectures, and a report
    (suites compared, notes, signatures) with nothing pending yet."""
    _all, sources, note = _security_suites(reader)
    return _indexes(reader, db, archive, sources, note)


def security_updates(reader: ImageReader, db: DpkgDatabase, archive: Archive) -> SecurityReport:
    """The image's pending security updates, against the archive as the host sees it now, and
    the updates its holds and pins would keep out."""
    all_sources, sources, note = _security_suites(reader)
    indexes, report = _indexes(reader, db, archive, sources, note)
    installed = db.installed()
    report.pending = pending_updates(installed, indexes)
    report.held = [f"held by dpkg (apt-mark hold): {p}" for p in held_by_dpkg(installed)]
    own = [s for s in sources if s.in_image]  # the distribution's, added for a note: not pinned
    report.held += held_by_pins(reader, db, all_sources, own, archive)
    return report


def from_security_suite(
    installed: Iterable[DebPackage], indexes: Iterable[PackageIndex]
) -> set[tuple[str, str]]:
    """(name, arch) of the installed packages whose very version the security suite publishes:
    the update that brought them was a security update (the SBOM marks them)."""
    indexes = list(indexes)
    out = set()
    for pkg in installed:
        for index in indexes:
            if any(
                e.version == pkg.version and e.arch in (pkg.arch, "all")
                for e in index.entries(pkg.name)
            ):
                out.add((pkg.name, pkg.arch))
                break
    return out
