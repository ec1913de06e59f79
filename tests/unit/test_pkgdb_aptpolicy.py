"""Which security updates apt would refuse to install, asked of the host's real apt-cache over
an image tree's apt configuration: pins by release, label, version and Default-Release, files
apt skips by name, a backports pin that holds nothing back, and dpkg's hold selection."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pkgdb.aptpolicy import PROBE_SUFFIX, held_by_dpkg, held_by_pins
from pkgdb.archive import Release
from pkgdb.dpkg import DpkgDatabase, parse_status
from pkgdb.sources import AptSource, read_sources
from validations.offline_tree import TreeImage

pytestmark = pytest.mark.skipif(not shutil.which("apt-cache"), reason="needs the host's apt")

STATUS = """\
Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: openssh-server
Status: install ok installed
Architecture: amd64
Version: 1:9.2p1-2+deb12u6

Package: bash
Status: hold ok installed
Architecture: amd64
Version: 5.2.15-2+b8

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-0+deb12u1

Package: old-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
"""
SOURCES = """\
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm-backports main
"""
EVERY = {"dpkg", "openssh-server", "bash", "tzdata"}  # the installed packages
FIELDS = {
    "bookworm": (("Origin", "Debian"), ("Label", "Debian"), ("Suite", "stable"),
                 ("Version", "12.8"), ("Codename", "bookworm")),
    "bookworm-updates": (("Origin", "Debian"), ("Label", "Debian"), ("Suite", "stable-updates"),
                         ("Version", "12-updates"), ("Codename", "bookworm-updates")),
    "bookworm-security": (("Origin", "Debian"), ("Label", "Debian-Security"),
                          ("Suite", "stable-security"), ("Version", "12"),
                          ("Codename", "bookworm-security")),
}  # fmt: skip


class FakeArchive:
    """The Release fields of Debian 12's suites, as the verified InRelease files carry them."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def release(self, source: AptSource, _keys: object) -> Release:
        self.asked.append(source.suite)
        return Release(source.base + "InRelease", source.suite, source.suite, False, {}, "", 0.0,
                       pin_fields=FIELDS[source.suite])  # fmt: skip


def image(tmp_path: Path, files: dict[str, str]) -> TreeImage:
    root = tmp_path / "root"
    for path, text in {
        "/etc/apt/sources.list": SOURCES,
        "/etc/apt/trusted.gpg.d/debian.gpg": "key",
        "/var/lib/dpkg/status": STATUS,
        **files,
    }.items():
        (root / path[1:]).parent.mkdir(parents=True, exist_ok=True)
        (root / path[1:]).write_text(text)
    return TreeImage(root)


def held(tmp_path: Path, files: dict[str, str]) -> list[str]:
    reader = image(tmp_path, files)
    db = DpkgDatabase(parse_status(STATUS), status=STATUS.encode())
    sources = read_sources(reader)
    security = [s for s in sources if s.suite == "bookworm-security"]
    archive = FakeArchive()
    out = held_by_pins(reader, db, sources, security, archive)  # type: ignore[arg-type]
    assert "bookworm-backports" not in archive.asked  # only the release's own suites
    return out


def test_the_good_configuration_takes_every_security_update(tmp_path: Path) -> None:
    assert held(tmp_path, {}) == []
    assert PROBE_SUFFIX.startswith("+")


@pytest.mark.parametrize(
    ("name", "files", "names"),
    [
        ("default-release", {"/etc/apt/apt.conf.d/99release": 'APT::Default-Release "bookworm";\n'},
         EVERY),
        ("default-release-by-suite",
         {"/etc/apt/apt.conf.d/50local": 'APT::Default-Release "stable";\n'},
         EVERY),
        ("negative-label-pin", {"/etc/apt/preferences.d/security":
         "Package: *\nPin: release l=Debian-Security\nPin-Priority: -1\n"},
         EVERY),
        ("low-codename-pin-in-preferences", {"/etc/apt/preferences":
         "Package: *\nPin: release n=bookworm-security\nPin-Priority: 50\n"},
         EVERY),
        ("version-pin-glob", {"/etc/apt/preferences.d/ssh.pref":
         "Package: openssh-*\nPin: version 1:9.2p1-2+deb12u6\nPin-Priority: 1001\n"},
         {"openssh-server"}),
        ("regex-suite-pin", {"/etc/apt/preferences.d/keep":
         "Package: /^(bash|tzdata)$/\nPin: release a=stable-security\nPin-Priority: 10\n"},
         {"bash", "tzdata"}),
    ],
)  # fmt: skip
def test_pins_that_keep_security_updates_out(
    tmp_path: Path, name: str, files: dict[str, str], names: set[str]
) -> None:
    out = held(tmp_path, files)
    assert out, name
    assert out[0].startswith(f"apt would install no security update of {len(names)} of 4"), out[0]
    assert {line.split()[0] for line in out[1:]} == names
    assert "apt-cache policy:" in out[0]


@pytest.mark.parametrize(
    "files",
    [
        {"/etc/apt/preferences.d/backports":
         "Package: *\nPin: release n=bookworm-backports\nPin-Priority: 100\n"},
        {"/etc/apt/preferences.d/security.disabled":  # apt skips this name, with a notice
         "Package: *\nPin: release l=Debian-Security\nPin-Priority: -1\n"},
        {"/etc/apt/preferences.d/security-first":
         "Package: *\nPin: release l=Debian-Security\nPin-Priority: 990\n"},
        {"/etc/apt/preferences.d/site":  # the installed version is the site's too: a tie
         "Package: /^(bash|tzdata)$/\nPin: origin deb.debian.org\nPin-Priority: 10\n"},
    ],
)  # fmt: skip
def test_pins_that_hold_nothing_back(tmp_path: Path, files: dict[str, str]) -> None:
    assert held(tmp_path, files) == []


def test_the_priority_table_names_the_suites(tmp_path: Path) -> None:
    out = held(tmp_path, {"/etc/apt/apt.conf.d/99release": 'APT::Default-Release "bookworm";\n'})
    assert "bookworm 990" in out[0] and "bookworm-security 500" in out[0], out[0]


def test_dpkg_holds() -> None:
    assert held_by_dpkg(parse_status(STATUS)) == ["bash 5.2.15-2+b8"]
