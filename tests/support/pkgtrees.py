"""Small root trees with a package database, for the inventory and SBOM tests: a Debian 12
one (dpkg status and info, DEP-5 and free-form copyright files, a kernel's modules) and an
AlmaLinux 9 one (rpmdb.sqlite with real header blobs, a key pseudo-package)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pkgdb import rpm
from tests.support.rpmdb import INT16, INT32, STRING, STRING_ARRAY, header, shadow_utils

STATUS = """\
Package: libssl3
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.15-1~deb12u1

Package: openssh-server
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u3

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: linux-image-6.1.0-28-amd64
Status: install ok installed
Architecture: amd64
Source: linux-signed-amd64 (6.1.119+1)
Version: 6.1.119-1

Package: old-removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
"""
DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: OpenSSH

Files: *
Copyright: 1995 Tatu Ylonen
License: BSD-3-clause
 Redistribution and use ...

Files: contrib/*
Copyright: 2000 Someone
License: GPL-2+ with OpenSSL exception
 This program is free software ...
"""


def debian_tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "usr/lib").mkdir(parents=True)
    (root / "usr/lib/os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
        "VERSION_CODENAME=bookworm\n"
    )
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    (root / "etc/debian_version").write_text("12.8\n")
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(STATUS)
    (info / "linux-image-6.1.0-28-amd64.list").write_text(
        "/boot\n/boot/vmlinuz-6.1.0-28-amd64\n/lib/modules/6.1.0-28-amd64\n"
    )
    (root / "usr/lib/modules/6.1.0-28-amd64").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    doc = root / "usr/share/doc"
    for name in ("openssh-server", "tzdata", "libssl3"):
        (doc / name).mkdir(parents=True)
    (doc / "openssh-server/copyright").write_text(DEP5)
    (doc / "tzdata/copyright").write_text("This is free-form text, not DEP-5.\n")
    (doc / "libssl3/copyright").symlink_to("../openssh-server/copyright")  # a linked file
    return root


def el_tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(
        'NAME="AlmaLinux"\nID="almalinux"\nVERSION_ID="9.4"\nPRETTY_NAME="AlmaLinux 9.4"\n'
    )
    db = root / "var/lib/rpm"
    db.mkdir(parents=True)
    kernel = header({
        rpm.NAME: (STRING, "kernel-core"),
        rpm.VERSION: (STRING, "5.14.0"),
        rpm.RELEASE: (STRING, "427.13.1.el9_4"),
        rpm.ARCH: (STRING, "x86_64"),
        rpm.LICENSE: (STRING, "GPL-2.0-only"),
        rpm.SOURCERPM: (STRING, "kernel-5.14.0-427.13.1.el9_4.src.rpm"),
        rpm.DIRNAMES: (STRING_ARRAY, ["/lib/modules/5.14.0-427.13.1.el9_4.x86_64/"]),
        rpm.BASENAMES: (STRING_ARRAY, ["vmlinuz"]),
        rpm.DIRINDEXES: (INT32, [0]),
        rpm.FILEMODES: (INT16, [0o100755]),
    })  # fmt: skip
    pubkey = header({
        rpm.NAME: (STRING, "gpg-pubkey"),
        rpm.VERSION: (STRING, "b86b3716"),
        rpm.RELEASE: (STRING, "61e69f29"),
    })  # fmt: skip
    con = sqlite3.connect(db / "rpmdb.sqlite")
    con.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB)")
    for blob in (shadow_utils(), kernel, pubkey):
        con.execute("INSERT INTO Packages (blob) VALUES (?)", (blob,))
    con.commit()
    con.close()
    (root / "usr/lib/modules/5.14.0-427.13.1.el9_4.x86_64").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    return root
