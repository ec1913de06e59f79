"""rpm headers built here byte by byte, an rpmdb.sqlite holding them, and .debs built by
dpkg-deb: what pkgdb reads of each."""

from __future__ import annotations

import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

from core.errors import ImageDefect
from pkgdb import rpm
from pkgdb.debfile import maintainer_scripts, member_modes, script_grants, script_setcaps
from pkgdb.owners import read_package_files
from tests.support.rpmdb import INT16, INT32, STRING, STRING_ARRAY, header, sha256, shadow_utils
from validations.offline_tree import TreeImage


def test_header_fields_and_files() -> None:
    pkg = rpm.package_from_header(rpm.parse_header(shadow_utils()))
    assert (pkg.name, pkg.epoch, pkg.version, pkg.release, pkg.arch) == (
        "shadow-utils", 2, "4.9", "12.el9", "x86_64",
    )  # fmt: skip
    assert pkg.evr == "2:4.9-12.el9" and str(pkg) == "shadow-utils 2:4.9-12.el9"
    assert pkg.license == "BSD and GPLv2+" and pkg.sourcerpm.endswith(".src.rpm")
    assert pkg.digest_algo == "sha256"
    passwd, _chage, defs = pkg.files
    assert (passwd.path, passwd.mode, passwd.digest) == (
        "/usr/bin/passwd",
        0o104755,
        sha256(b"passwd"),
    )
    assert defs.conffile and not passwd.conffile


def test_an_old_header_without_digest_algo_is_md5_and_without_epoch_has_none() -> None:
    blob = header({rpm.NAME: (STRING, "x"), rpm.VERSION: (STRING, "1"), rpm.RELEASE: (STRING, "1")})
    pkg = rpm.package_from_header(rpm.parse_header(blob))
    assert pkg.epoch is None and pkg.evr == "1-1" and pkg.digest_algo == "md5" and pkg.files == ()


@pytest.mark.parametrize(
    "blob, words",
    [
        (b"\0\0", "shorter than its intro"),
        (struct.pack(">ii", 5, 100) + b"\0" * 20, "do not fit"),
        (
            struct.pack(">ii", 1, 4) + struct.pack(">iiii", 1000, STRING, 0, 1) + b"abcd",
            "not terminated",
        ),
        (struct.pack(">ii", 1, 4) + struct.pack(">iiii", 1000, INT32, 0, 9) + b"abcd", "runs past"),
        (
            struct.pack(">ii", 1, 4) + struct.pack(">iiii", 1000, STRING, 99, 1) + b"abc\0",
            "outside",
        ),
    ],
)
def test_damaged_headers_are_image_defects(blob: bytes, words: str) -> None:
    with pytest.raises(ImageDefect, match=words):
        rpm.parse_header(blob)


def test_file_arrays_that_disagree_are_refused() -> None:
    blob = header({
        rpm.NAME: (STRING, "x"),
        rpm.DIRNAMES: (STRING_ARRAY, ["/"]),
        rpm.BASENAMES: (STRING_ARRAY, ["a", "b"]),
        rpm.DIRINDEXES: (INT32, [0]),
        rpm.FILEMODES: (INT16, [0o100644, 0o100644]),
    })  # fmt: skip
    with pytest.raises(ImageDefect, match="disagree"):
        rpm.package_from_header(rpm.parse_header(blob))


def el_root(root: Path, where: str = "var/lib/rpm") -> Path:
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/bin/passwd").write_bytes(b"passwd")
    (root / "usr/bin/chage").write_bytes(b"changed")
    (root / where).mkdir(parents=True)
    con = sqlite3.connect(root / where / "rpmdb.sqlite")
    con.execute(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
    )
    con.execute("INSERT INTO Packages (blob) VALUES (?)", (shadow_utils(),))
    con.commit()
    con.close()
    return root


@pytest.mark.parametrize("where", ["var/lib/rpm", "usr/lib/sysimage/rpm"])
def test_rpmdb_read_from_a_tree_gives_owned_files(tmp_path: Path, where: str) -> None:
    image = TreeImage(el_root(tmp_path, where))
    (pkg,) = rpm.read_rpmdb(image) or []
    assert pkg.name == "shadow-utils"
    owned = read_package_files(image)
    assert owned.kind == "rpm"
    (passwd,) = owned.owners("/usr/bin/passwd")
    assert passwd.mode == 0o104755 and passwd.algo == "sha256"
    assert owned.untouched("/usr/bin/passwd", b"passwd")
    assert not owned.untouched("/usr/bin/chage", b"changed")


def test_a_broken_rpmdb_is_an_image_defect(tmp_path: Path) -> None:
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    (tmp_path / "var/lib/rpm/rpmdb.sqlite").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(ImageDefect, match="not a readable rpm database"):
        rpm.read_rpmdb(TreeImage(tmp_path))


# -- .deb files ---------------------------------------------------------------------------------

needs_dpkg_deb = pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="dpkg-deb builds the .deb")


def build_deb(tmp: Path, compression: str, postinst: str | None = None) -> Path:
    """A .deb with /usr/bin/tool (0755), /usr/bin/sudoish (4755), /bin/grp (2755)."""
    root = tmp / f"pkg-{compression}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        "Package: tool\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: t <t@example.invalid>\n"
        "Description: test\n"
    )
    if postinst:
        (root / "DEBIAN/postinst").write_text(postinst)
        (root / "DEBIAN/postinst").chmod(0o755)
    for rel, mode in (("usr/bin/tool", 0o755), ("usr/bin/sudoish", 0o4755), ("bin/grp", 0o2755)):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())
        path.chmod(mode)
    deb = tmp / f"tool-{compression}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(deb)],
        check=True, capture_output=True,
    )  # fmt: skip
    return deb


@needs_dpkg_deb
@pytest.mark.parametrize("compression", ["xz", "zstd", "gzip"])
def test_member_modes_of_each_compression(tmp_path: Path, compression: str) -> None:
    modes = member_modes(build_deb(tmp_path, compression))
    assert modes["/usr/bin/tool"] == 0o755
    assert modes["/usr/bin/sudoish"] == 0o4755
    assert modes["/bin/grp"] == 0o2755


@needs_dpkg_deb
def test_maintainer_scripts_and_their_grants(tmp_path: Path) -> None:
    postinst = (
        "#!/bin/sh\nset -e\n"
        "if ! dpkg-statoverride --list /usr/bin/ssh-agent >/dev/null; then\n"
        "\tchgrp _ssh /usr/bin/ssh-agent\n\tchmod 2755 /usr/bin/ssh-agent\nfi\n"
        'chmod u+s "$DPKG_ROOT/usr/bin/helper"\nchmod 644 /etc/modules\n'
        "# chmod 4755 /usr/bin/commented\n"
    )
    scripts = maintainer_scripts(build_deb(tmp_path, "xz", postinst))
    assert scripts["postinst"].decode() == postinst
    assert script_grants(scripts["postinst"]) == {
        "/usr/bin/ssh-agent": 0o2000,
        "/usr/bin/helper": 0o4000,
    }
    assert script_grants(b"chmod g+s,o-w /a /b\nchmod -R a+s /c\nchmod ug=rwxs /d\n") == {
        "/a": 0o2000, "/b": 0o2000, "/c": 0o6000, "/d": 0o6000,
    }  # fmt: skip


def test_setcap_grants_in_maintainer_scripts() -> None:
    """iproute2's postinst (conditional grant, then a removal on the else branch), and the
    option and multi-file forms of setcap."""
    script = (
        b'    if ! setcap "cap_dac_override,cap_sys_admin,cap_net_admin=ep" /bin/ip; then\n'
        b'        if ! setcap "-r" /bin/ip; then\n'
        b"setcap cap_net_raw+p $DPKG_ROOT/bin/ping 2>/dev/null || true\n"
        b"setcap -q -n 0 cap_setuid=ep /usr/bin/newuidmap cap_setgid=ep /usr/bin/newgidmap\n"
        b"# setcap cap_sys_admin+ep /usr/bin/commented\n"
    )
    assert script_setcaps(script) == {
        "/bin/ip": "cap_dac_override,cap_sys_admin,cap_net_admin=ep",
        "/bin/ping": "cap_net_raw+p",
        "/usr/bin/newuidmap": "cap_setuid=ep",
        "/usr/bin/newgidmap": "cap_setgid=ep",
    }


def test_rpm_filecaps_reach_the_owned_files() -> None:
    blob = header(
        {
            rpm.NAME: (STRING, "shadow-utils"), rpm.VERSION: (STRING, "4.9"),
            rpm.RELEASE: (STRING, "1"), rpm.BASENAMES: (STRING_ARRAY, ["newuidmap", "id"]),
            rpm.DIRNAMES: (STRING_ARRAY, ["/usr/bin/"]), rpm.DIRINDEXES: (INT32, [0, 0]),
            rpm.FILEMODES: (INT16, [0o100755, 0o100755]),
            rpm.FILECAPS: (STRING_ARRAY, ["cap_setuid=ep", ""]),
        }
    )  # fmt: skip
    newuidmap, plain = rpm.package_from_header(rpm.parse_header(blob)).files
    assert (newuidmap.caps, plain.caps) == ("cap_setuid=ep", "")


def test_files_whose_verify_flags_exclude_the_digest_are_not_compared() -> None:
    """%verify(not md5 size mtime) (logs, databases a package seeds): no digest to hold."""
    blob = header(
        {
            rpm.NAME: (STRING, "x"), rpm.VERSION: (STRING, "1"), rpm.RELEASE: (STRING, "1"),
            rpm.BASENAMES: (STRING_ARRAY, ["a", "b"]), rpm.DIRNAMES: (STRING_ARRAY, ["/var/"]),
            rpm.DIRINDEXES: (INT32, [0, 0]), rpm.FILEMODES: (INT16, [0o100644, 0o100644]),
            rpm.FILEDIGESTS: (STRING_ARRAY, [sha256(b"a"), sha256(b"b")]),
            rpm.FILEVERIFYFLAGS: (INT32, [0xFFFFFFFF, 0xFFFFFFFF & ~1]),
        }
    )  # fmt: skip
    a, b = rpm.package_from_header(rpm.parse_header(blob)).files
    assert (a.digest, b.digest) == (sha256(b"a"), "")


def test_a_file_that_is_not_a_deb(tmp_path: Path) -> None:
    from core.errors import InfrastructureError

    bogus = tmp_path / "x.deb"
    bogus.write_bytes(b"hello")
    with pytest.raises(InfrastructureError, match=r"not a \.deb"):
        member_modes(bogus)
