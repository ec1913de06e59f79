"""The image's own package database, read once per opened image and shared by the checks that
judge files against it (credentials, setuid files, security updates)."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from pkgdb.dpkg import DpkgDatabase, read_dpkg
from pkgdb.owners import PackageFiles, read_package_files
from validations.offline import OfflineImage

_DPKG: WeakKeyDictionary[Any, DpkgDatabase] = WeakKeyDictionary()
_FILES: WeakKeyDictionary[Any, PackageFiles] = WeakKeyDictionary()


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
