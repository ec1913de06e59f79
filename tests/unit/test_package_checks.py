"""The package checks on small trees: setuid/setgid files against dpkg (with .debs built by
dpkg-deb, served by a stand-in for the archive) and against rpm headers; EL's dnf answer."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from test_pkgdb_rpm_deb import el_root

import validations.test_packages as t_packages
from pkgdb.archive import Archive, IndexEntry, PackageIndex, Release
from pkgdb.locate import locate
from pkgdb.sources import AptSource, read_sources
from validations import setuid
from validations.offline_tree import TreeImage
from validations.packagedb import dpkg_database, package_files

needs_dpkg_deb = pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="dpkg-deb builds .debs")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def build_deb(
    tmp: Path, name: str, files: dict[str, tuple[bytes, int]], postinst: str = ""
) -> Path:
    root = tmp / f"build-{name}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\n"
        "Maintainer: t <t@example.invalid>\nDescription: test\n"
    )
    if postinst:
        (root / "DEBIAN/postinst").write_text(postinst)
        (root / "DEBIAN/postinst").chmod(0o755)
    for rel, (data, mode) in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        (root / rel).chmod(mode)
    deb = tmp / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                   check=True, capture_output=True)  # fmt: skip
    return deb


class StandInArchive:
    """What locate() and the setuid check ask of pkgdb.archive.Archive, from local .debs."""

    def __init__(self, debs: dict[str, Path]) -> None:
        self.debs = debs
        stanzas = [
            f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nFilename: pool/{name}.deb\n"
            f"Size: 1\nSHA256: {hashlib.sha256(deb.read_bytes()).hexdigest()}\n"
            for name, deb in debs.items()
        ]
        self.text = "\n".join(stanzas).encode()

    def release(self, source: AptSource, keyrings: object) -> Release:
        return Release("u", "s", "s", False, {"main/binary-amd64/Packages": ("x", 1)}, "", 0.0)

    def index(self, source: AptSource, component: str, arch: str, keys: object) -> PackageIndex:
        return PackageIndex("u", source.suite, self.text)

    def deb(self, source: AptSource, entry: IndexEntry) -> Path:
        return self.debs[entry.name]


SPECIAL = {
    # path: (content, mode on the image, package, mode in the .deb)
    "usr/bin/passwd": (b"passwd", 0o4755, "passwd", 0o4755),
    "usr/bin/ssh-agent": (b"agent", 0o2755, "openssh-client", 0o755),  # postinst chmod 2755
    "usr/bin/wall": (b"wall", 0o2755, "bsdutils", 0o755),  # dpkg-statoverride grants it
    "usr/bin/find": (b"find", 0o4755, "findutils", 0o755),  # nothing grants it
    "usr/bin/chfn": (b"trojan", 0o4755, "passwd", 0o4755),  # content differs from md5sums
    "usr/local/bin/rootsh": (b"bash", 0o4755, "", 0),  # no package owns it
}


def debian_root(root: Path, tmp: Path) -> tuple[Path, StandInArchive]:
    (root / "etc/apt").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc/apt/sources.list").write_text("deb http://archive.invalid/debian bookworm main\n")
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    status: list[str] = []
    owned: dict[str, list[tuple[str, bytes]]] = {}
    shipped: dict[str, dict[str, tuple[bytes, int]]] = {}
    for rel, (data, mode, pkg, deb_mode) in SPECIAL.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        (root / rel).chmod(mode)
        if pkg:
            original = b"chfn" if rel.endswith("chfn") else data
            owned.setdefault(pkg, []).append((rel, original))
            shipped.setdefault(pkg, {})[rel] = (original, deb_mode)
    owned["dpkg"] = []
    for pkg, files in owned.items():
        status.append(
            f"Package: {pkg}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n"
        )
        (info / f"{pkg}.list").write_text("".join(f"/{rel}\n" for rel, _ in files))
        (info / f"{pkg}.md5sums").write_text("".join(f"{md5(d)}  {rel}\n" for rel, d in files))
    (root / "var/lib/dpkg/status").write_text("\n".join(status))
    (root / "var/lib/dpkg/statoverride").write_text("root tty 2755 /usr/bin/wall\n")
    postinst = "#!/bin/sh\nchgrp _ssh /usr/bin/ssh-agent\nchmod 2755 /usr/bin/ssh-agent\n"
    debs = {
        pkg: build_deb(tmp, pkg, files, postinst if pkg == "openssh-client" else "")
        for pkg, files in shipped.items()
    }
    return root, StandInArchive(debs)


@needs_dpkg_deb
def test_setuid_files_against_dpkg_and_the_debs(tmp_path: Path) -> None:
    root, archive = debian_root(tmp_path / "root", tmp_path)
    image = TreeImage(root)
    files = setuid.special_files(image)
    assert {p for p, _ in files} == {f"/{rel}" for rel in SPECIAL}
    db, owned = dpkg_database(image), package_files(image)
    found = setuid.dpkg_findings(image, files, db, owned, cast(Archive, archive))
    assert found == [
        "/usr/bin/chfn: mode 4755 (setuid, owner 0:0): passwd 1.0-1 installed other content "
        "(its checksum differs)",
        "/usr/local/bin/rootsh: mode 4755 (setuid, owner 0:0): no installed package owns it",
        "/usr/bin/find: mode 4755 is setuid, which findutils 1.0-1 does not ship, its maintainer "
        "scripts do not set and no dpkg-statoverride grants",
    ]


def test_setuid_files_against_rpm_headers(tmp_path: Path) -> None:
    root = el_root(tmp_path)  # shadow-utils: passwd 4755 (content "passwd"), chage 0755
    (root / "usr/bin/passwd").chmod(0o4755)
    (root / "usr/bin/chage").write_bytes(b"chage")
    (root / "usr/bin/chage").chmod(0o4755)
    (root / "usr/bin/newtool").write_bytes(b"x")
    (root / "usr/bin/newtool").chmod(0o2711)
    image = TreeImage(root)
    found = setuid.rpm_findings(image, setuid.special_files(image), package_files(image))
    assert found == [
        "/usr/bin/newtool: mode 2711 (setgid, owner 0:0): no installed package owns it",
        "/usr/bin/chage: mode 4755 is setuid, which shadow-utils 2:4.9-12.el9 does not ship "
        "(rpm FILEMODES)",
    ]


class Host:
    """testinfra's host as the EL check uses it: sudo() and run()."""

    def __init__(self, rc: int, stdout: str, stderr: str = "") -> None:
        self.result = type("R", (), {"rc": rc, "stdout": stdout, "stderr": stderr})()

    @contextlib.contextmanager
    def sudo(self) -> Iterator[None]:
        yield

    def run(self, command: str) -> Any:
        assert command.startswith("dnf ")
        return self.result


def test_el_security_updates_from_dnf() -> None:
    out = (
        "RLSA-2024:1234 Important/Sec. openssl-1:3.0.7-27.el9.x86_64\n"
        "RLBA-2024:0001 bugfix        tzdata-2024a-1.el9.noarch\n"
    )
    assert t_packages._security_updates_el(Host(0, out)) == [
        "RLSA-2024:1234 Important/Sec. openssl-1:3.0.7-27.el9.x86_64"
    ]
    props: list[tuple[str, object]] = []
    with pytest.raises(AssertionError, match="1 security update"):
        t_packages.test_security_updates_el(Host(0, out), lambda k, v: props.append((k, v)))
    assert props == [
        ("security_updates", json.dumps(t_packages._security_updates_el(Host(0, out))))
    ]
    from core.errors import InfrastructureError

    with pytest.raises(InfrastructureError, match="dnf updateinfo failed"):
        t_packages._security_updates_el(Host(1, "", "Cannot download repomd.xml"))


@needs_dpkg_deb
def test_a_version_the_sources_no_longer_carry_is_judged_by_the_nearest(tmp_path: Path) -> None:
    root, archive = debian_root(tmp_path / "root", tmp_path)
    status = root / "var/lib/dpkg/status"
    status.write_text(
        status.read_text().replace(
            "Package: findutils\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1",
            "Package: findutils\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.9-1",
        )
    )
    image = TreeImage(root)
    db = dpkg_database(image)
    wanted = [p for p in db.installed() if p.name in ("findutils", "passwd")]
    where = locate(cast(Archive, archive), image, read_sources(image), wanted)
    assert (where["findutils"].entry.version, where["findutils"].exact) == ("1.0-1", False)
    assert where["passwd"].exact
    archive.text = archive.text.replace(b"Package: findutils", b"Package: other")
    files = setuid.special_files(image)
    found = setuid.dpkg_findings(image, files, db, package_files(image), cast(Archive, archive))
    assert (
        "/usr/bin/find: setuid, from findutils 0.9-1, which none of the image's sources carries: what it ships cannot be read"
        in found
    )
