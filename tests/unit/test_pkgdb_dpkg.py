"""pkgdb's reading of dpkg's database, sources and keys, on small root trees made here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.errors import ImageDefect
from pkgdb.dpkg import parse_diversions, parse_md5sums, parse_statoverride, parse_status, read_dpkg
from pkgdb.keys import KeyStore, dearmor
from pkgdb.osrelease import read_os_release
from pkgdb.owners import read_package_files
from pkgdb.paths import canonical, directory_links
from pkgdb.security import MISSING, release_of_sources, security_sources
from pkgdb.sources import AptSource, parse_deb822, parse_one_line, read_sources
from validations.offline_tree import TreeImage

STATUS = """\
Package: login
Status: install ok installed
Priority: required
Architecture: amd64
Multi-Arch: foreign
Source: shadow (1:4.13+dfsg1-1)
Version: 1:4.13+dfsg1-1+b1
Conffiles:
 /etc/login.defs f43a7b1eb7e082f1d4e2cb8f8376e71b
 /etc/pam.d/login 5afbc06eb5f71fef25170cf3c936a442
Description: system login tools

Package: libssl3
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.17-1~deb12u2

Package: dash
Status: install ok installed
Architecture: amd64
Version: 0.5.12-2

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Conffiles:
 /etc/oldpkg.conf 0123456789abcdef0123456789abcdef
"""


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def make_root(root: Path) -> Path:
    """A merged-/usr root with dpkg's database for login, libssl3 and dash."""
    for d in ("usr/bin", "usr/lib", "etc/pam.d", "var/lib/dpkg/info", "etc/apt"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "bin").symlink_to("usr/bin")
    (root / "lib").symlink_to("usr/lib")
    files = {
        "usr/bin/su": b"su binary",
        "usr/bin/sh.distrib": b"dash itself",
        "usr/bin/sh": b"a local shell",
        "usr/lib/libssl.so.3": b"ssl",
        "etc/login.defs": b"edited by the admin\n",
        "etc/pam.d/login": b"pam\n",
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    info = root / "var/lib/dpkg/info"
    (root / "var/lib/dpkg/status").write_text(STATUS)
    (info / "login.list").write_text("/.\n/bin\n/bin/su\n/etc/login.defs\n/etc/pam.d/login\n")
    (info / "login.md5sums").write_text(f"{md5(b'su binary')}  bin/su\n")
    (info / "libssl3:amd64.list").write_text("/usr/lib/libssl.so.3\n")
    (info / "libssl3:amd64.md5sums").write_text(f"{md5(b'ssl')}  usr/lib/libssl.so.3\n")
    (info / "dash.list").write_text("/bin/sh\n")
    (info / "dash.md5sums").write_text(f"{md5(b'dash itself')}  bin/sh\n")
    (info / "oldpkg.list").write_text("/etc/oldpkg.conf\n")
    (root / "var/lib/dpkg/diversions").write_text("/bin/sh\n/bin/sh.distrib\n:\n")
    (root / "var/lib/dpkg/statoverride").write_text(
        "root messagebus 4754 /usr/lib/dbus-1.0/dbus-daemon-launch-helper\nbroken line\n"
    )
    (root / "etc/os-release").write_text('ID=debian\nVERSION_CODENAME=bookworm\nVERSION_ID="12"\n')
    return root


def test_status_stanzas_give_name_arch_version_source_and_conffiles() -> None:
    login, libssl, dash, old = parse_status(STATUS)
    assert (login.name, login.arch, login.version) == ("login", "amd64", "1:4.13+dfsg1-1+b1")
    assert (login.source, login.source_version) == ("shadow", "1:4.13+dfsg1-1")
    assert login.conffiles[0] == ("/etc/login.defs", "f43a7b1eb7e082f1d4e2cb8f8376e71b")
    assert (libssl.source, libssl.source_version) == ("openssl", "3.0.17-1~deb12u2")
    assert (dash.source, dash.source_version) == ("dash", "0.5.12-2")
    assert libssl.key == "libssl3:amd64" and login.key == "login"
    assert login.installed and not old.installed


def test_small_parsers() -> None:
    assert parse_md5sums(f"{md5(b'x')}  usr/bin/x\nshort\n") == {"/usr/bin/x": md5(b"x")}
    (d,) = parse_diversions("/bin/sh\n/bin/sh.distrib\ndash\n")
    assert (d.path, d.to, d.by) == ("/bin/sh", "/bin/sh.distrib", "dash")
    over = parse_statoverride("root shadow 2755 /usr/bin/chage\nnot an override\n")
    assert over["/usr/bin/chage"].mode == 0o2755 and over["/usr/bin/chage"].group == "shadow"


def test_database_read_from_a_tree_and_files_at_their_real_paths(tmp_path: Path) -> None:
    image = TreeImage(make_root(tmp_path))
    db = read_dpkg(image)
    assert {p.key for p in db.installed()} == {"login", "libssl3:amd64", "dash"}
    assert db.files["libssl3:amd64"] == ["/usr/lib/libssl.so.3"]
    assert directory_links(image) == {"/bin": "/usr/bin", "/lib": "/usr/lib"}
    owned = read_package_files(image)
    assert owned.kind == "dpkg"
    (su,) = owned.owners("/usr/bin/su")  # listed as /bin/su: merged /usr
    assert su.name == "login" and su.matches(b"su binary") and not su.matches(b"other")
    assert owned.untouched("/usr/bin/su", b"su binary")
    # a local diversion moves dash's /bin/sh to /bin/sh.distrib
    assert [o.name for o in owned.owners("/usr/bin/sh.distrib")] == ["dash"]
    assert owned.owners("/usr/bin/sh") == []
    # conffiles carry their md5 from the status file; an edited one is not untouched
    (defs,) = owned.owners("/etc/login.defs")
    assert defs.conffile and not owned.untouched("/etc/login.defs", b"edited by the admin\n")
    assert owned.owners("/etc/oldpkg.conf") == []  # only installed packages own files


def test_a_diversion_by_a_package_keeps_its_own_copy(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "var/lib/dpkg/diversions").write_text("/bin/sh\n/bin/sh.distrib\nbash\n")
    owned = read_package_files(TreeImage(root))
    assert [o.name for o in owned.owners("/usr/bin/sh.distrib")] == ["dash"]


def test_image_without_database(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    image = TreeImage(tmp_path)
    assert read_dpkg(image).packages == []
    assert read_package_files(image).kind == "none"


def test_canonical_follows_one_linked_top_directory() -> None:
    links = {"/bin": "/usr/bin"}
    assert canonical("/bin/su", links) == "/usr/bin/su"
    assert canonical("/binary/x", links) == "/binary/x"
    assert canonical("bin/../bin/su", links) == "/usr/bin/su"
    assert canonical("/", links) == "/"


ONE_LINE = """\
# comment
deb http://deb.debian.org/debian bookworm main contrib
deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/x.gpg] https://repo.example/apt stable main
deb-src http://deb.debian.org/debian bookworm main
deb [ trusted=yes ] http://local.example/ ./
"""

DEB822 = """\
Types: deb deb-src
URIs: http://deb.debian.org/debian http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Enabled: no

Types: deb
URIs: https://inline.example/apt
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZQAAABYJKwYBBAHaRw8BAQdA
 -----END PGP PUBLIC KEY BLOCK-----
"""


def test_one_line_sources() -> None:
    main, third, flat = parse_one_line(ONE_LINE, "/etc/apt/sources.list")
    assert (main.uri, main.suite, main.components) == (
        "http://deb.debian.org/debian",
        "bookworm",
        ("main", "contrib"),
    )
    assert main.base == "http://deb.debian.org/debian/dists/bookworm/"
    assert main.origin == "/etc/apt/sources.list:2"
    assert third.arches == ("amd64", "arm64")
    assert third.signed_by == ("/usr/share/keyrings/x.gpg",)
    assert flat.trusted and flat.base == "http://local.example/./"
    with pytest.raises(ImageDefect, match=r"sources\.list:1"):
        parse_one_line("deb http://only-a-uri\n", "/etc/apt/sources.list")


def test_deb822_sources() -> None:
    sources = parse_deb822(DEB822, "/etc/apt/sources.list.d/debian.sources")
    assert [(s.uri, s.suite) for s in sources][:4] == [
        ("http://deb.debian.org/debian", "bookworm"),
        ("http://deb.debian.org/debian", "bookworm-updates"),
        ("http://mirror.example/debian", "bookworm"),
        ("http://mirror.example/debian", "bookworm-updates"),
    ]
    assert all(s.suite != "bookworm-security" for s in sources)  # Enabled: no
    inline = sources[-1]
    assert inline.signed_by[0].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDME")


def test_read_sources_from_both_formats(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "etc/apt/sources.list").write_text(ONE_LINE)
    (root / "etc/apt/sources.list.d").mkdir()
    (root / "etc/apt/sources.list.d/debian.sources").write_text(DEB822)
    (root / "etc/apt/sources.list.d/ignored.save").write_text("deb http://x y z\n")
    sources = read_sources(TreeImage(root))
    assert len(sources) == 3 + 5
    assert read_os_release(TreeImage(root))["VERSION_CODENAME"] == "bookworm"


def test_dearmor_gives_the_binary_packets(tmp_path: Path) -> None:
    armored = (
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test\n\nAQID\nBAU=\n=abcd\n"
        b"-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    assert dearmor(armored) == b"\x01\x02\x03\x04\x05"
    assert dearmor(b"\x99binary") == b"\x99binary"
    with pytest.raises(ImageDefect, match="does not decode"):
        dearmor(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n@@@\n-----END PGP PUBLIC KEY BLOCK-----")


def test_keys_for_a_source_come_from_the_image(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "etc/apt/trusted.gpg.d").mkdir()
    (root / "etc/apt/trusted.gpg.d/a.gpg").write_bytes(b"\x99A")
    (root / "etc/apt/trusted.gpg.d/notes.txt").write_bytes(b"no key")
    (root / "usr/share/keyrings").mkdir(parents=True)
    (root / "usr/share/keyrings/x.gpg").write_bytes(b"\x99X")
    keys = KeyStore(TreeImage(root))
    plain = AptSource("http://a", "s", ("main",), origin="o")
    assert keys.for_source(plain) == [("/etc/apt/trusted.gpg.d/a.gpg", b"\x99A")]
    signed = AptSource("http://a", "s", ("main",), signed_by=("/usr/share/keyrings/x.gpg",))
    assert keys.for_source(signed) == [("/usr/share/keyrings/x.gpg", b"\x99X")]
    missing = AptSource("http://a", "s", ("main",), signed_by=("/nope.gpg",), origin="o:1")
    with pytest.raises(ImageDefect, match=r"o:1: signed-by keyring /nope\.gpg is missing"):
        keys.for_source(missing)


def test_security_suite_from_the_sources_or_the_distribution() -> None:
    main = AptSource("http://deb.debian.org/debian", "bookworm", ("main", "contrib"), origin="x")
    sec = AptSource("http://security.debian.org/debian-security", "bookworm-security", ("main",))
    assert security_sources([main, sec], "debian", "bookworm") == ([sec], "")
    (derived,), note = security_sources([main], "debian", "bookworm")
    assert derived.base == "http://deb.debian.org/debian-security/dists/bookworm-security/"
    assert derived.components == ("main", "contrib") and derived.origin == MISSING
    assert "no bookworm-security in the image's apt sources" in note
    (ubuntu,), _ = security_sources([], "ubuntu", "noble")
    assert ubuntu.base == "http://security.ubuntu.com/ubuntu/dists/noble-security/"
    with pytest.raises(ImageDefect, match="no known one"):
        security_sources([], "gentoo", "x")


def test_release_follows_the_sources_when_os_release_names_none() -> None:
    """An os-release without VERSION_CODENAME (identity-os-release's finding) still leaves the
    security check the release apt follows, read from the sources."""
    debian = parse_one_line(
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb http://deb.debian.org/debian bookworm-updates main\n"
        "deb http://deb.debian.org/debian-security bookworm-security main\n"
        "deb [trusted=yes] http://deb.debian.org/debian bookworm-backports main\n",
        "/etc/apt/sources.list",
    )
    assert release_of_sources(debian) == "bookworm"
    extra = parse_one_line("deb http://example.org/repo stable main\n", "/etc/apt/x.list")
    assert release_of_sources(debian + extra) == "bookworm"  # the paired suite wins
    assert release_of_sources(extra) == "stable"
    two = parse_one_line("deb http://a/ bookworm main\ndeb http://a/ trixie main\n", "/x")
    assert release_of_sources(two) == ""  # ambiguous: the check says so rather than guess
