"""rpm headers built here byte by byte, an rpmdb.sqlite holding them, and .debs built by
dpkg-deb: what pkgdb reads of each."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

from core.errors import ImageDefect
from pkgdb import rpm
from pkgdb.debfile import maintainer_scripts, member_modes, script_grants
from pkgdb.owners import read_package_files
from validations.offline_tree import TreeImage

STRING, INT16, INT32, BIN, STRING_ARRAY = 6, 3, 4, 7, 8


def header(tags: dict[int, tuple[int, object]]) -> bytes:
    """An rpm header blob as rpm's headerExport writes it: il, dl, index, data (big endian),
    with a leading immutable-region entry like real headers carry."""
    index, data = [], b""
    entries = [(63, (BIN, b"\0" * 16)), *sorted(tags.items())]
    for tag, (kind, value) in entries:
        align = {INT16: 2, INT32: 4}.get(kind, 1)
        data += b"\0" * (-len(data) % align)
        offset = len(data)
        if kind == STRING:
            blob, count = str(value).encode() + b"\0", 1
        elif kind == STRING_ARRAY:
            items = list(value)  # type: ignore[call-overload]
            blob, count = b"".join(s.encode() + b"\0" for s in items), len(items)
        elif kind in (INT16, INT32):
            items = list(value)  # type: ignore[call-overload]
            blob, count = (
                struct.pack(f">{len(items)}{'H' if kind == INT16 else 'I'}", *items),
                len(items),
            )
        else:
            blob, count = bytes(value), len(bytes(value))  # type: ignore[call-overload]
        data += blob
        index.append(struct.pack(">iiii", tag, kind, offset, count))
    return struct.pack(">ii", len(index), len(data)) + b"".join(index) + data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shadow_utils() -> bytes:
    return header({
        rpm.NAME: (STRING, "shadow-utils"),
        rpm.EPOCH: (INT32, [2]),
        rpm.VERSION: (STRING, "4.9"),
        rpm.RELEASE: (STRING, "12.el9"),
        rpm.ARCH: (STRING, "x86_64"),
        rpm.LICENSE: (STRING, "BSD and GPLv2+"),
        rpm.SOURCERPM: (STRING, "shadow-utils-4.9-12.el9.src.rpm"),
        rpm.DIRNAMES: (STRING_ARRAY, ["/usr/bin/", "/etc/"]),
        rpm.BASENAMES: (STRING_ARRAY, ["passwd", "chage", "login.defs"]),
        rpm.DIRINDEXES: (INT32, [0, 0, 1]),
        rpm.FILEMODES: (INT16, [0o104755, 0o100755, 0o100644]),
        rpm.FILEDIGESTS: (STRING_ARRAY, [sha256(b"passwd"), sha256(b"chage"), sha256(b"defs")]),
        rpm.FILEFLAGS: (INT32, [0, 0, rpm.RPMFILE_CONFIG]),
        rpm.FILEDIGESTALGO: (INT32, [8]),
    })  # fmt: skip


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


def test_a_file_that_is_not_a_deb(tmp_path: Path) -> None:
    from core.errors import InfrastructureError

    bogus = tmp_path / "x.deb"
    bogus.write_bytes(b"hello")
    with pytest.raises(InfrastructureError, match=r"not a \.deb"):
        member_modes(bogus)
