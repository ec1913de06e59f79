"""The SBOM's input: an image's inventory read offline from small root trees made here (dpkg's
database with DEP-5 copyright files, rpm's header database), and version order by each
package manager's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ImageDefect, InfrastructureError
from pkgdb.dpkg import DpkgDatabase
from pkgdb.inventory import Inventory, Kernel, dep5_licenses, read_inventory
from pkgdb.versions import compare, rpmvercmp
from tests.support.pkgtrees import DEP5, debian_tree, el_tree
from validations.offline_tree import TreeImage


def test_debian_inventory_reads_the_package_database(tmp_path: Path) -> None:
    inv = read_inventory(TreeImage(debian_tree(tmp_path)))
    assert inv.database == "dpkg" and inv.distro == "debian-12" and inv.distro_version == "12.8"
    by_name = {p.name: p for p in inv.packages}
    assert sorted(by_name) == ["libssl3", "linux-image-6.1.0-28-amd64", "openssh-server", "tzdata"]
    ssh = by_name["openssh-server"]
    assert (ssh.version, ssh.arch, ssh.source, ssh.source_version) == (
        "1:9.2p1-2+deb12u3", "amd64", "openssh", "1:9.2p1-2+deb12u3",
    )  # fmt: skip
    assert ssh.licenses == ("BSD-3-clause", "GPL-2+ with OpenSSL exception")
    assert by_name["libssl3"].licenses == ssh.licenses  # read through its link
    assert by_name["tzdata"].licenses == ()  # free-form copyright: nothing declared
    kernel = by_name["linux-image-6.1.0-28-amd64"]
    assert (kernel.source, kernel.source_version) == ("linux-signed-amd64", "6.1.119+1")
    assert inv.kernels == [Kernel("6.1.0-28-amd64", "linux-image-6.1.0-28-amd64")]
    assert all(p.security is None for p in inv.packages)
    assert inv.notes == ["security marks: not known (no package archive at hand)"]
    assert Inventory.from_json(json.loads(json.dumps(inv.to_json()))) == inv


def test_security_marks_come_from_the_callable_and_a_failure_is_a_note(tmp_path: Path) -> None:
    image = TreeImage(debian_tree(tmp_path))

    def marks(db: DpkgDatabase) -> set[tuple[str, str]]:
        return {("libssl3", "amd64")}

    inv = read_inventory(image, security=marks)
    assert {p.name: p.security for p in inv.packages}["libssl3"] is True
    assert {p.name: p.security for p in inv.packages}["tzdata"] is False
    assert inv.notes == []

    def unreachable(db: DpkgDatabase) -> set[tuple[str, str]]:
        raise InfrastructureError("http://deb.debian.org/debian-security: connection refused")

    inv = read_inventory(image, security=unreachable)
    assert all(p.security is None for p in inv.packages)
    assert inv.notes == [
        "security marks: not known (http://deb.debian.org/debian-security: connection refused)"
    ]


def test_el_inventory_reads_rpm_headers(tmp_path: Path) -> None:
    inv = read_inventory(TreeImage(el_tree(tmp_path)))
    assert inv.database == "rpm" and inv.distro == "almalinux-9"
    names = [p.name for p in inv.packages]
    assert names == ["kernel-core", "shadow-utils"]  # gpg-pubkey is a key, not software
    shadow = inv.packages[1]
    assert (shadow.version, shadow.epoch, shadow.evr) == ("4.9-12.el9", 2, "2:4.9-12.el9")
    assert (shadow.source, shadow.source_version) == ("shadow-utils", "4.9-12.el9")
    assert shadow.licenses == ("BSD and GPLv2+",)
    assert inv.kernels == [Kernel("5.14.0-427.13.1.el9_4.x86_64", "kernel-core")]


def test_an_image_without_a_package_database_is_an_image_defect(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text("ID=debian\n")
    with pytest.raises(ImageDefect, match="neither an installed dpkg package nor an rpm"):
        read_inventory(TreeImage(tmp_path))
    (tmp_path / "etc/os-release").write_text("NAME=x\n")
    with pytest.raises(ImageDefect, match="no /etc/os-release ID"):
        read_inventory(TreeImage(tmp_path))


def test_dep5_licences() -> None:
    assert dep5_licenses(DEP5) == ("BSD-3-clause", "GPL-2+ with OpenSSL exception")
    assert dep5_licenses("Format: https://example.org/not-dep5\n\nnonsense") == ()
    assert dep5_licenses("free text\n") == ()


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.0", "1.0", 0),
        ("1.0", "1.1", -1),
        ("1.10", "1.9", 1),
        ("1.0~rc1", "1.0", -1),
        ("1.0^git1", "1.0", 1),
        ("1.0^git1", "1.0.1", -1),
        ("1.0a", "1.0", 1),
        ("1.01", "1.1", 0),
        ("1.a", "1.1", -1),
        ("2.1", "2.a", 1),
    ],
)
def test_rpmvercmp_follows_rpm(a: str, b: str, order: int) -> None:
    assert rpmvercmp(a, b) == order
    assert rpmvercmp(b, a) == -order


def test_compare_by_each_package_manager() -> None:
    assert compare("rpm", "1:1.0-1.el9", "2.0-1.el9") > 0  # the epoch wins
    assert compare("rpm", "4.9-12.el9", "4.9-12.el9_4") < 0
    assert compare("deb", "1:9.2p1-2+deb12u10", "1:9.2p1-2+deb12u9") > 0  # not string order
    assert compare("deb", "3.0.15-1~deb12u1", "3.0.15-1") < 0
