"""Whether apt would take the security suite's updates at all, asked of apt itself.

A clone's updates can be stopped without any error: a pin that ranks the installed version
above the security suite's (a negative or below-100 priority on the security origin, a
`Pin: version` above 500, `APT::Default-Release` naming the main suite, which then outranks the
security suite at 990), or dpkg's `hold` selection (`apt-mark hold`). Pin matching has many
spellings (origin, label, suite, codename, globs, regular expressions, per-package stanzas,
`.pref` files and files apt skips by name), so rather than re-implement it, the host's own
`apt-cache policy` is run over the image's apt configuration (apt.conf.d, preferences,
sources, dpkg status, copied out of the image) with a probe archive: each of the image's
`<codename>`, `-updates` and `-security` suites with the real Release fields apt pins by
(Origin, Label, Suite, Codename, Version, NotAutomatic, fetched and verified like the
security indexes), the main suites offering the installed versions and the security suite a
higher version of every installed package. A package whose candidate stays the installed
version would never take a security update. The host's apt reads the image's files; an image
whose apt.conf.d moves `Dir::Etc` to absolute paths of its own is read without them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from core.errors import InfrastructureError
from core.ownership import temp_dir
from pkgdb.archive import Archive, Release
from pkgdb.dpkg import DebPackage, DpkgDatabase
from pkgdb.keys import KeyStore
from pkgdb.reader import ImageReader
from pkgdb.sources import APT_DIR, AptSource

SHOWN = 12  # held packages named in the finding; a Default-Release holds every one
PROBE_SUFFIX = "+security.probe"  # sorts above the version it extends (dpkg ordering)
# What apt reads from /etc/apt to decide candidates; keys, auth and the rest do not matter here.
APT_FILES = ("apt.conf", "preferences", "sources.list")
APT_FOLDERS = ("apt.conf.d", "preferences.d", "sources.list.d")
_URI_LINE = re.compile(r"^'([^']+)' (\S+) ")
_POLICY = re.compile(r"^(\S+):\n  Installed: (\S+)\n  Candidate: (\S+)\n", re.M)
_PACKAGE_FILE = re.compile(r"^ *(-?\d+) \S+ (\S+?)/\S+ \S+ Packages$")  # " 500 URI suite/comp arch"
_PINNED = re.compile(r"^ +(\S+) -> (\S+) with priority (-?\d+)$")


def held_by_dpkg(installed: Iterable[DebPackage]) -> list[str]:
    """Installed packages whose dpkg selection is `hold` (apt-mark hold, dpkg --set-selections):
    apt never upgrades them."""
    return sorted(f"{p.name} {p.version}" for p in installed if p.status.split()[:1] == ["hold"])


def _copy_apt_config(reader: ImageReader, etc: Path) -> None:
    """The image's /etc/apt files that decide candidates, as regular files (links resolved in
    the image), with their names kept: apt skips the same files by name as in the image."""
    wanted = [f"{APT_DIR}/{name}" for name in APT_FILES]
    for folder in APT_FOLDERS:
        path = f"{APT_DIR}/{folder}"
        (etc / folder).mkdir(parents=True, exist_ok=True)
        if reader.exists(path):
            wanted += [f"{path}/{name}" for name in reader.listdir(path)]
    for path, data in reader.read_files(wanted):
        target = etc / path[len(APT_DIR) + 1 :]
        target.write_bytes(data)


def _release_file(release: Release) -> str:
    return "".join(f"{k}: {v}\n" for k, v in release.pin_fields)


def _stanza(pkg: DebPackage, version: str) -> str:
    multi = f"Multi-Arch: {pkg.multi_arch}\n" if pkg.multi_arch else ""
    return f"Package: {pkg.name}\nVersion: {version}\nArchitecture: {pkg.arch}\n{multi}\n"


def _query_name(pkg: DebPackage, native: str) -> str:
    return pkg.name if pkg.arch in (native, "all") else f"{pkg.name}:{pkg.arch}"


class PolicyProbe:
    """apt's candidates for the image's installed packages against a probe archive, in a
    temporary folder removed on exit."""

    def __init__(self, reader: ImageReader, status: bytes, native: str, foreign: list[str]):
        self.native = native
        self.arches = [native, *foreign]
        self._tmp = temp_dir("xcpng-aptpolicy")  # tagged: a killed run's is tidied later
        try:
            self.lists = self._tmp / "lists"
            (self.lists / "partial").mkdir(parents=True)
            _copy_apt_config(reader, self._tmp / "etc")
            (self._tmp / "status").write_bytes(status)
            settings = {
                "Dir::Etc": f"{self._tmp}/etc/",
                "Dir::State": f"{self._tmp}/state/",
                "Dir::State::status": f"{self._tmp}/status",
                "Dir::State::Lists": f"{self.lists}/",
                "Dir::Cache": f"{self._tmp}/cache/",
                "Dir::Cache::pkgcache": "",
                "Dir::Cache::srcpkgcache": "",
                "Dir::Log": f"{self._tmp}/log/",
                "Debug::NoLocking": "true",
                "APT::Architecture": native,
            }
            arches = " ".join(f'"{a}";' for a in self.arches)
            (self._tmp / "apt.conf").write_text(
                "".join(f'{k} "{v}";\n' for k, v in settings.items())
                + f"APT::Architectures {{ {arches} }};\n"
            )
            self.files = {  # URI -> the list file apt names it, as apt itself says
                m.group(1): m.group(2)
                for m in map(_URI_LINE.match, self._apt("apt-get", "update", "--print-uris"))
                if m
            }
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> PolicyProbe:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _apt(self, *args: str) -> list[str]:
        tool = shutil.which(args[0])
        if tool is None:
            raise InfrastructureError(
                f"{args[0]} is not on this machine: the image's apt pins are read with the "
                "host's apt (install apt, as on the Debian runners scripts/setup supports)"
            )
        env = {**os.environ, "APT_CONFIG": str(self._tmp / "apt.conf"), "LC_ALL": "C"}
        proc = subprocess.run(
            [tool, *args[1:]], capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode != 0:
            raise InfrastructureError(
                f"{' '.join(args[:2])} over the image's apt configuration failed: "
                f"{proc.stderr.strip()[-400:]}"
            )
        return proc.stdout.splitlines()

    def write_suite(
        self, source: AptSource, release: Release, packages: list[DebPackage], bump: bool
    ) -> None:
        """The probe's Release and Packages files of one suite: the installed versions, or each
        raised above them. A suite apt does not read gets none."""
        name = self.files.get(source.base + "InRelease")
        if name is None:
            return
        (self.lists / name.replace("_InRelease", "_Release")).write_text(_release_file(release))
        component = (source.components or ("main",))[0]
        for arch in self.arches:
            uri = f"{source.base}{component}/binary-{arch}/Packages"
            target = next((f for u, f in self.files.items() if u.startswith(uri)), None)
            if target is None:
                continue
            mine = [p for p in packages if p.arch in (arch, "all" if arch == self.native else "")]
            (self.lists / target).write_text(
                "".join(_stanza(p, p.version + (PROBE_SUFFIX if bump else "")) for p in mine)
            )

    def candidates(self, packages: list[DebPackage]) -> dict[str, str]:
        """Query name -> apt's candidate version, as `apt-cache policy` says."""
        names = sorted({_query_name(p, self.native) for p in packages})
        out = "\n".join(self._apt("apt-cache", "policy", *names)) + "\n"
        return {m.group(1): m.group(3) for m in _POLICY.finditer(out)}

    def priorities(self) -> list[str]:
        """The priority apt gives each suite of the probe and each pinned package."""
        out = []
        for line in self._apt("apt-cache", "policy"):
            if m := _PACKAGE_FILE.match(line):
                out.append(f"{m.group(2)} {m.group(1)}")
            elif m := _PINNED.match(line):
                out.append(f"{m.group(1)} pinned to {m.group(2)} at {m.group(3)}")
        return out


def held_by_pins(
    reader: ImageReader,
    db: DpkgDatabase,
    sources: list[AptSource],
    security: list[AptSource],
    archive: Archive,
) -> list[str]:
    """A summary line and one line per installed package whose security update apt would not
    install because of the image's pins; [] when none."""
    installed = db.installed()
    if not security or not installed:
        return []
    native = db.native_arch()
    suites = {s.suite.rstrip("/") for s in security}
    codename = next(iter(suites)).removesuffix("-security")
    keystore = KeyStore(reader)
    foreign = [a for a in db.foreign_arches if a != native]
    with PolicyProbe(reader, db.status, native, foreign) as probe:
        for source in sources:
            suite = source.suite.rstrip("/")
            if suite in suites or suite in (codename, f"{codename}-updates"):
                release = archive.release(source, keystore.for_source(source))
                probe.write_suite(source, release, installed, bump=suite in suites)
        seen = probe.candidates(installed)
        held = [
            f"{p.name} {p.version} (apt's candidate: {seen[q]})"
            for p in installed
            if (q := _query_name(p, native)) in seen and seen[q] != p.version + PROBE_SUFFIX
        ]
        table = probe.priorities() if held else []
    if not held:
        return []
    return [
        f"apt would install no security update of {len(held)} of {len(installed)} installed "
        f"packages: the image's pins rank the installed version higher (apt-cache policy: "
        f"{'; '.join(table[:6])})",
        *sorted(held)[:SHOWN],
        *([f"... and {len(held) - SHOWN} more"] if len(held) > SHOWN else []),
    ]
