"""The security.capability attribute as the kernel stores it, decoded; libcap's text form read
as maintainer scripts and rpm headers spell it; the ext4 reader's batch of attributes."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from validations import filecaps
from validations.offline import Ext4Image


def _value(magic: int, *words: int) -> bytes:
    return struct.pack(f"<{1 + len(words)}I", magic, *words)


def test_revision_2_permitted_effective() -> None:
    caps = filecaps.decode(_value(0x02000001, 1 << 7, 0, 0, 0))
    assert caps.permitted == {"setuid"} and caps.effective and not caps.inheritable
    assert str(caps) == "cap_setuid=ep"


def test_high_word_and_inheritable_and_revision_3() -> None:
    # cap_bpf (39) lives in the second permitted word; revision 3 carries a root uid after
    caps = filecaps.decode(_value(0x03000000, 1 << 21, 1 << 12, 1 << (39 - 32), 0, 1000))
    assert caps.permitted == {"sys_admin", "bpf"} and caps.inheritable == {"net_admin"}
    assert not caps.effective and str(caps) == "cap_bpf,cap_sys_admin=p cap_net_admin+i"


def test_revision_1_has_one_pair() -> None:
    assert filecaps.decode(_value(0x01000001, 1 << 13, 0)).permitted == {"net_raw"}


@pytest.mark.parametrize(
    "value", [b"\x01\x00", _value(0x07000001, 1, 0, 0, 0), _value(0x02000001, 1, 0)]
)
def test_what_the_kernel_would_refuse(value: bytes) -> None:
    with pytest.raises(filecaps.BadCapability):
        filecaps.decode(value)


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("cap_net_raw+p", {"net_raw"}),
        (
            "cap_dac_override,cap_sys_admin,cap_net_admin=ep",
            {"dac_override", "sys_admin", "net_admin"},
        ),
        ("CAP_SETUID=ep cap_setgid+ei", {"setuid", "setgid"}),
        ("", set()),
    ],
)
def test_text_form(spec: str, names: set[str]) -> None:
    assert filecaps.text_names(spec) == names


def test_all_means_every_capability() -> None:
    assert filecaps.text_names("all=ep") == set(filecaps.NAMES)


@pytest.mark.skipif(os.geteuid() != 0, reason="mkfs.ext4 -d keeps owners only as root")
def test_ext4_reader_batches_attributes_by_inode(tmp_path: Path) -> None:
    """One debugfs run finds the attribute on every file that has it, a name with a double
    quote (which debugfs cannot take as a path) included."""
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    for name in ("python3", "plain", 'odd "name"'):
        (root / "usr/bin" / name).write_bytes(b"\x7fELF" + name.encode())
    fs = tmp_path / "root.ext4"
    with fs.open("wb") as fh:
        fh.truncate(16 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(fs)], check=True)
    image = Ext4Image(fs, 0)
    files = {p: st for p, st in image.walk("/") if st.is_file}
    value = _value(0x02000001, 1 << 7, 0, 0, 0)
    (tmp_path / "cap").write_bytes(value)
    for name in ("/usr/bin/python3", '/usr/bin/odd "name"'):
        cmd = f"ea_set -f {tmp_path / 'cap'} <{files[name].ino}> {filecaps.XATTR}"
        subprocess.run(["debugfs", "-w", "-R", cmd, str(fs)], check=True, capture_output=True)
    got = Ext4Image(fs, 0).getxattrs([*files, "/nothing"], filecaps.XATTR)
    assert got == {"/usr/bin/python3": value, '/usr/bin/odd "name"': value}
