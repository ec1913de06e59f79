"""Where an installed package's .deb is: the index entry of its exact version among the image's
own sources, the smallest indexes searched first (a security suite's index is a few hundred
kilobytes, the main one tens of megabytes; InRelease gives their sizes before any is fetched)."""

from __future__ import annotations

from dataclasses import dataclass

from debian.debian_support import Version

from pkgdb.archive import Archive, IndexEntry, PackageIndex
from pkgdb.dpkg import DebPackage
from pkgdb.keys import KeyStore
from pkgdb.reader import ImageReader
from pkgdb.sources import AptSource


@dataclass(frozen=True)
class Located:
    source: AptSource
    entry: IndexEntry
    exact: bool  # the installed version itself; False: the nearest one the sources still have


def _indexes(
    archive: Archive, keys: KeyStore, sources: list[AptSource], arches: set[str]
) -> list[tuple[int, AptSource, str, str]]:
    """(compressed size, source, component, arch) of every index the sources name."""
    out = []
    for source in sources:
        release = archive.release(source, keys.for_source(source))
        for component in source.components or ("",):
            for arch in sorted(arches):
                stem = f"{component}/binary-{arch}/Packages" if component else "Packages"
                sizes = [
                    release.files[stem + s][1]
                    for s in (".xz", ".gz", "")
                    if stem + s in release.files
                ]
                if sizes:
                    out.append((sizes[0], source, component, arch))
    return sorted(out, key=lambda t: t[0])


def locate(
    archive: Archive, reader: ImageReader, sources: list[AptSource], wanted: list[DebPackage]
) -> dict[str, Located]:
    """Index entries of the wanted packages, by package name. A version the sources no longer
    carry (a point release replaced it) falls back to the highest one they have."""
    arches = {p.arch for p in wanted if p.arch != "all"} or {"all"}
    todo = {p.name: p for p in wanted}
    found: dict[str, Located] = {}
    nearest: dict[str, Located] = {}
    keys = KeyStore(reader)
    for _size, source, component, arch in _indexes(archive, keys, sources, arches):
        index: PackageIndex = archive.index(source, component, arch, keys.for_source(source))
        for name, pkg in list(todo.items()):
            for entry in index.entries(name):
                if entry.arch not in (pkg.arch, "all"):
                    continue
                if entry.version == pkg.version:
                    found[name] = Located(source, entry, exact=True)
                    del todo[name]
                    break
                best = nearest.get(name)
                if best is None or Version(entry.version) > Version(best.entry.version):
                    nearest[name] = Located(source, entry, exact=False)
        if not todo:
            break
    return {**nearest, **found}
