"""The image's own package database, read once per opened image and shared by the checks that
judge files against it (credentials, setuid files, security updates, package integrity)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from pkgdb.dpkg import DpkgDatabase, read_dpkg
from pkgdb.owners import PackageFiles, read_package_files
from validations.offline import OfflineImage

_DPKG: WeakKeyDictionary[Any, DpkgDatabase] = WeakKeyDictionary()
_FILES: WeakKeyDictionary[Any, PackageFiles] = WeakKeyDictionary()
_VERIFIED: WeakKeyDictionary[Any, Verified] = WeakKeyDictionary()


@dataclass(frozen=True)
class Verified:
    """Every regular file a package owns, read once and compared with the digest its database
    records (what `debsums -a` and `rpm -Va` compare)."""

    untouched: dict[str, int]  # path -> size, content as the package installed it
    changed: list[str]  # content differs from every owner's record (or none is recorded)


def dpkg_database(image: OfflineImage) -> DpkgDatabase:
    """dpkg's database of the image (empty on an image without one)."""
    if image not in _DPKG:
        _DPKG[image] = read_dpkg(image)
    return _DPKG[image]


def package_files(image: OfflineImage) -> PackageFiles:
    """Every file the image's packages own (dpkg's, else rpm's), by real path."""
    if image not in _FILES:
        dpkg = dpkg_database(image)
        _FILES[image] = read_package_files(image, dpkg if dpkg.packages else None)
    return _FILES[image]


def verify(image: OfflineImage) -> Verified:
    """The package files of the image as installed or changed, streamed once (about 3 s for
    Debian 12's 16,000 files) and shared by the credential scan and the integrity check."""
    if image not in _VERIFIED:
        owned = package_files(image)
        paths = [p for p, st in image.walk("/") if st.is_file and owned.owners(p)]
        untouched, changed = {}, []
        for path, data in image.read_files(paths):
            if owned.untouched(path, data):
                untouched[path] = len(data)
            else:
                changed.append(path)
        _VERIFIED[image] = Verified(untouched, changed)
    return _VERIFIED[image]
