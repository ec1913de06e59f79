"""What an image is made of, read offline from its own package database: the SBOM's input.

One record per installed package (dpkg's status on Debian/Ubuntu, rpm's header database on EL):
name, version, architecture, source package, the licences the package declares (rpm's License
tag; on Debian the machine-readable `/usr/share/doc/<pkg>/copyright`, DEP-5, when the package
ships one), and whether this very version came from the distribution's security suite (Debian
and Ubuntu, when the harness's archive cache was at hand; unknown otherwise). Plus the kernels
(`/lib/modules/<release>`, with the package that installed each) and the os-release fields.

The record is plain JSON (`to_json` / `from_json`) so that the session that read the image and
the separate publish step that writes the CycloneDX document agree on it byte for byte.
"""

from __future__ import annotations

import logging
import posixpath
import re
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from debian import copyright as dep5

from core.errors import ImageDefect, InfrastructureError
from pkgdb.dpkg import DebPackage, DpkgDatabase, read_dpkg
from pkgdb.osrelease import read_os_release
from pkgdb.reader import ImageReader
from pkgdb.rpm import RpmPackage, read_rpmdb

SCHEMA = "xcpng-templates/inventory/v1"
MODULES = ("/usr/lib/modules", "/lib/modules")
OS_RELEASE_FIELDS = ("ID", "ID_LIKE", "NAME", "PRETTY_NAME", "VERSION_ID", "VERSION_CODENAME")
# rpm's database holds the trusted signing keys as pseudo-packages: keys, not software
RPM_PSEUDO = ("gpg-pubkey",)
_DEP5_LOG = logging.getLogger(dep5.__name__)  # says "Fixing Format URL" about others' files
_SRPM = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?:no)?src\.rpm$")


@dataclass(frozen=True)
class Package:
    """One installed package, as its package manager knows it."""

    kind: str  # "deb" or "rpm"
    name: str
    version: str  # deb: the full version, epoch included; rpm: version-release
    arch: str
    source: str  # the source package's name
    source_version: str  # deb: the source's full version; rpm: version-release of the .src.rpm
    epoch: int | None = None  # rpm only (a deb's epoch is inside `version`)
    licenses: tuple[str, ...] = ()  # as declared, verbatim (DEP-5 short names, rpm's tag)
    security: bool | None = None  # this version is the security suite's; None: not known

    @property
    def evr(self) -> str:
        """The version as the package manager compares it (rpm: epoch:version-release)."""
        if self.kind == "rpm" and self.epoch is not None:
            return f"{self.epoch}:{self.version}"
        return self.version


@dataclass(frozen=True)
class Kernel:
    release: str  # as `uname -r` says it: 6.1.0-28-amd64
    package: str  # the package that installed it ("" when none owns it)


@dataclass
class Inventory:
    database: str  # "dpkg" or "rpm"
    os_release: dict[str, str]
    distro_version: str  # /etc/debian_version (12.15) where it exists, else VERSION_ID
    packages: list[Package]
    kernels: list[Kernel]
    read_at: float
    notes: list[str] = field(default_factory=list)

    @property
    def distro(self) -> str:
        """ID-VERSION_ID's major: the purl's `distro` qualifier (debian-12, almalinux-9)."""
        major = self.os_release.get("VERSION_ID", "").split(".")[0]
        return f"{self.os_release.get('ID', 'linux')}-{major}" if major else self.os_release["ID"]

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> Inventory:
        """Back from `to_json`; ValueError naming what is wrong with a damaged record."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError(f"not an inventory record ({SCHEMA})")
        try:
            packages = [
                Package(**{**p, "licenses": tuple(p.get("licenses", ()))}) for p in data["packages"]
            ]
            kernels = [Kernel(**k) for k in data["kernels"]]
            inv = cls(
                database=str(data["database"]),
                os_release={str(k): str(v) for k, v in data["os_release"].items()},
                distro_version=str(data["distro_version"]),
                packages=packages,
                kernels=kernels,
                read_at=float(data["read_at"]),
                notes=[str(n) for n in data.get("notes", [])],
            )
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"inventory record is incomplete or damaged ({e!r})") from None
        if not inv.packages or not inv.os_release.get("ID"):
            raise ValueError("inventory record lists no package or no os-release ID")
        return inv


def read_inventory(
    reader: ImageReader,
    dpkg: DpkgDatabase | None = None,
    security: Callable[[DpkgDatabase], set[tuple[str, str]]] | None = None,
) -> Inventory:
    """The image's inventory. `dpkg`: its database when already read (the checks share one);
    `security`: (name, arch) of the packages whose version the security suite publishes, or
    None when no archive is at hand (the marks are then unknown, and a note says so)."""
    release = read_os_release(reader)
    if not release.get("ID"):
        raise ImageDefect("the image has no /etc/os-release ID: which distribution is it?")
    db = dpkg if dpkg is not None else read_dpkg(reader)
    notes: list[str] = []
    rpms: list[RpmPackage] | None = None
    if db.installed():
        packages, database = _debs(reader, db, security, notes), "dpkg"
    else:
        rpms = read_rpmdb(reader)
        if not rpms:
            raise ImageDefect("the image has neither an installed dpkg package nor an rpm database")
        packages, database = _rpms(rpms), "rpm"
        notes.append("security marks: not known for rpm (headers carry no advisory)")
    return Inventory(
        database=database,
        os_release={k: release[k] for k in OS_RELEASE_FIELDS if release.get(k)},
        distro_version=_distro_version(reader, release),
        packages=sorted(packages, key=lambda p: (p.name, p.arch)),
        kernels=kernels(reader, db if rpms is None else None, rpms),
        read_at=time.time(),
        notes=notes,
    )


def _distro_version(reader: ImageReader, release: dict[str, str]) -> str:
    if reader.exists("/etc/debian_version") and release.get("ID") == "debian":
        text = reader.read_bytes("/etc/debian_version").decode("utf-8", "replace").strip()
        if re.fullmatch(r"[0-9][0-9.]*", text):
            return text
    return release.get("VERSION_ID", "")


def _debs(
    reader: ImageReader,
    db: DpkgDatabase,
    security: Callable[[DpkgDatabase], set[tuple[str, str]]] | None,
    notes: list[str],
) -> list[Package]:
    installed = db.installed()
    licenses = deb_licenses(reader, installed)
    marks: set[tuple[str, str]] | None = None
    if security is None:
        notes.append("security marks: not known (no package archive at hand)")
    else:
        try:
            marks = security(db)
        except (ImageDefect, InfrastructureError) as e:  # the archive, or the image's sources
            notes.append(f"security marks: not known ({e})")
    return [
        Package(
            kind="deb",
            name=p.name,
            version=p.version,
            arch=p.arch,
            source=p.source,
            source_version=p.source_version,
            licenses=licenses.get(p.name, ()),
            security=None if marks is None else (p.name, p.arch) in marks,
        )
        for p in installed
    ]


def deb_licenses(reader: ImageReader, packages: Iterable[DebPackage]) -> dict[str, tuple[str, ...]]:
    """Package name -> the licence short names its DEP-5 copyright file declares (packages
    whose copyright file is free-form, or missing, declare none here)."""
    paths = {f"/usr/share/doc/{p.name}/copyright": p.name for p in packages}
    texts = dict(reader.read_files(paths))  # one pass; a linked copyright file is skipped...
    for path in paths.keys() - texts.keys():
        if reader.exists(path):  # ... and read on its own, its link resolved in the image
            texts[path] = reader.read_bytes(path)
    out: dict[str, tuple[str, ...]] = {}
    for path, data in texts.items():
        names = dep5_licenses(data.decode("utf-8", "replace"))
        if names:
            out[paths[path]] = names
    return out


def dep5_licenses(text: str) -> tuple[str, ...]:
    """The licence synopses of a machine-readable copyright file, in order of appearance;
    () when the file is not DEP-5."""
    if not text.lstrip().startswith("Format:"):
        return ()
    quiet = _DEP5_LOG.disabled
    _DEP5_LOG.disabled = True  # its complaints about a package's file are not ours to fix
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = dep5.Copyright(text.splitlines(), strict=False)
    except (dep5.Error, ValueError):
        return ()
    finally:
        _DEP5_LOG.disabled = quiet
    seen: dict[str, None] = {}
    paragraphs = [parsed.header, *parsed.all_files_paragraphs()]
    for para in paragraphs:
        lic = getattr(para, "license", None)
        if lic is not None and lic.synopsis and lic.synopsis.strip():
            seen.setdefault(" ".join(lic.synopsis.split()), None)
    return tuple(seen)


def _rpms(rpms: list[RpmPackage]) -> list[Package]:
    out = []
    for p in rpms:
        if p.name in RPM_PSEUDO:
            continue
        src = _SRPM.match(p.sourcerpm)
        out.append(
            Package(
                kind="rpm",
                name=p.name,
                version=f"{p.version}-{p.release}",
                arch=p.arch,
                source=src.group("name") if src else p.name,
                source_version=(
                    f"{src.group('version')}-{src.group('release')}"
                    if src
                    else f"{p.version}-{p.release}"
                ),
                epoch=p.epoch,
                licenses=(p.license,) if p.license else (),
            )
        )
    return out


def kernels(
    reader: ImageReader, dpkg: DpkgDatabase | None, rpms: list[RpmPackage] | None
) -> list[Kernel]:
    """Every kernel with modules in the image, and the package that installed it."""
    top = next((m for m in MODULES if reader.exists(m)), None)
    if top is None:
        return []
    owners: dict[str, str] = {}
    for release in reader.listdir(top):
        marks = (f"/boot/vmlinuz-{release}", f"/modules/{release}/vmlinuz")
        for name, paths in _owned_paths(dpkg, rpms):
            if any(p == marks[0] or p.endswith(marks[1]) for p in paths):
                owners[release] = name
                break
        owners.setdefault(release, "")
    return [Kernel(release=r, package=owners[r]) for r in sorted(owners)]


def _owned_paths(
    dpkg: DpkgDatabase | None, rpms: list[RpmPackage] | None
) -> Iterable[tuple[str, Iterable[str]]]:
    if dpkg is not None:
        for p in dpkg.installed():
            yield p.name, dpkg.files.get(p.key, ())
    for r in rpms or ():
        yield r.name, (posixpath.normpath(f.path) for f in r.files)
