"""The VHD writer and reader against qemu-img: what one writes the other reads, byte for byte.

qemu-img (Debian's qemu-utils) is the independent judge: `qemu-img info` must see the disk's size
and format; `qemu-img compare` reads every sector through qemu's own VHD driver and must find the
raw disk; and qemu's own dynamic VHDs must read back byte for byte. `qemu-img check` has no checker
for VHD ("This image format does not support checks", exit 63): it runs on the qcow2 that qemu
converts our VHD into, which is how its VHD driver's reading of every block is checked.
"""

from __future__ import annotations

import bz2
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from diskformats.vhd import BLOCK_SIZE, VhdError
from diskformats.vhd.layout import Footer
from diskformats.vhd.reader import read_vhd, verify, vhd_to_raw
from diskformats.vhd.writer import plan, raw_to_vhd, vhd_size

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="apt-get install qemu-utils"
)
MIB = 1 << 20
SIZE = 21 * MIB + 4096  # eleven blocks, the last one partial


def make_raw(path: Path, size: int = SIZE) -> Path:
    """A sparse disk: data in blocks 0, 3 (across into 4) and the partial last block."""
    with path.open("wb") as fh:
        fh.truncate(size)
        for offset, length in (
            (0, 4096),
            (3 * BLOCK_SIZE + BLOCK_SIZE - 512, 1024),
            (size - 512, 512),
        ):
            fh.seek(offset)
            fh.write(os.urandom(length))
    return path


def qemu_img(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)


def test_written_vhd_is_what_qemu_img_sees(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw")
    vhd = tmp_path / "disk.vhd"
    raw_to_vhd(raw, vhd, created_at=1_800_000_000)
    info = json.loads(qemu_img("info", "--output=json", "-f", "vpc", str(vhd)).stdout)
    assert info["format"] == "vpc" and info["virtual-size"] == SIZE
    unsupported = qemu_img("check", "-f", "vpc", str(vhd))
    assert unsupported.returncode == 63 and "does not support checks" in unsupported.stderr
    same = qemu_img("compare", "-f", "vpc", "-F", "raw", str(vhd), str(raw))
    assert same.returncode == 0 and "Images are identical" in same.stdout, same.stdout + same.stderr
    qcow2 = tmp_path / "disk.qcow2"
    assert qemu_img("convert", "-f", "vpc", "-O", "qcow2", str(vhd), str(qcow2)).returncode == 0
    check = qemu_img("check", "-f", "qcow2", str(qcow2))
    assert check.returncode == 0 and "No errors were found" in check.stdout, check.stdout
    back = tmp_path / "qemu.raw"
    assert qemu_img("convert", "-f", "vpc", "-O", "raw", str(vhd), str(back)).returncode == 0
    assert back.read_bytes() == raw.read_bytes()
    ours = verify(vhd)
    assert (ours.size, ours.allocated, ours.blocks) == (SIZE, 4, 11)
    assert vhd.stat().st_size == ours.file_size == vhd_size(os.open(raw, os.O_RDONLY), SIZE)


def test_holes_are_neither_read_nor_stored(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw")
    fd = os.open(raw, os.O_RDONLY)
    try:
        layout = plan(fd, SIZE)
    finally:
        os.close(fd)
    assert layout.allocated == (0, 3, 4, 10)  # blocks 1, 2, 5-9 are holes: not in the file


def test_reader_round_trip_plain_and_bzip2(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw")
    plain, packed = tmp_path / "d.vhd", tmp_path / "d.vhd.bz2"
    raw_to_vhd(raw, plain, created_at=1_800_000_000)
    raw_to_vhd(raw, packed, compression="bzip2", created_at=1_800_000_000)
    assert bz2.decompress(packed.read_bytes()) == plain.read_bytes()  # same VHD, deterministic
    for source in (plain, packed):
        out = tmp_path / f"{source.name}.raw"
        info = vhd_to_raw(source, out)
        assert out.read_bytes() == raw.read_bytes()
        assert info.compression == ("bzip2" if source is packed else "none")
        assert out.stat().st_blocks * 512 < SIZE  # written sparse


def test_qemu_img_dynamic_vhd_reads_back_byte_for_byte(tmp_path: Path) -> None:
    raw = make_raw(tmp_path / "disk.raw")
    theirs = tmp_path / "qemu.vhd"
    made = qemu_img(
        "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(raw), str(theirs)
    )
    assert made.returncode == 0, made.stderr
    expected = tmp_path / "expected.raw"
    qemu_img("convert", "-f", "vpc", "-O", "raw", str(theirs), str(expected))
    ours = tmp_path / "ours.raw"
    info = vhd_to_raw(theirs, ours)
    assert ours.read_bytes() == expected.read_bytes()
    assert ours.read_bytes()[:SIZE] == raw.read_bytes()  # qemu rounds the size up to its CHS
    assert info.creator == "qemu"


def test_a_disk_ending_in_zeros_keeps_its_size(tmp_path: Path) -> None:
    """The holes at the end are not stored; the raw disk read back still has the VHD's size."""
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as fh:
        fh.truncate(64 * MIB)
        fh.write(os.urandom(4096))
    theirs = tmp_path / "qemu.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", str(raw), str(theirs))
    ours = tmp_path / "ours.raw"
    info = vhd_to_raw(theirs, ours)
    assert ours.stat().st_size == info.size >= 64 * MIB
    same = qemu_img("compare", "-f", "raw", "-F", "vpc", str(ours), str(theirs))
    assert same.returncode == 0 and "mismatch" not in same.stdout + same.stderr


def _corrupt(src: Path, dst: Path, offset: int, data: bytes) -> Path:
    shutil.copyfile(src, dst)
    with dst.open("r+b") as fh:
        fh.seek(offset if offset >= 0 else dst.stat().st_size + offset)
        fh.write(data)
    return dst


@pytest.mark.parametrize(
    ("name", "offset", "data", "message"),
    [
        ("footer-copy-checksum", 40, b"\x01", "footer copy: checksum"),
        ("header-cookie", 512, b"xxsparse", "dynamic header: cookie"),
        ("header-checksum", 512 + 28, b"\x00\x00\x00\x05", "dynamic header: checksum"),
        ("bat-into-headers", 1536, b"\x00\x00\x00\x01", "lies inside the headers or the table"),
        ("footer-differs", -512 + 100, b"\x07", r"footer \(last 512 bytes\)"),
    ],
)
def test_damage_is_named(tmp_path: Path, name: str, offset: int, data: bytes, message: str) -> None:
    good = tmp_path / "good.vhd"
    raw_to_vhd(make_raw(tmp_path / "disk.raw"), good, created_at=1_800_000_000)
    bad = _corrupt(good, tmp_path / f"{name}.vhd", offset, data)
    with pytest.raises(VhdError, match=message):
        verify(bad)


def test_truncated_file_and_stream(tmp_path: Path) -> None:
    good = tmp_path / "good.vhd"
    raw_to_vhd(make_raw(tmp_path / "disk.raw"), good, created_at=1_800_000_000)
    cut = tmp_path / "cut.vhd"
    cut.write_bytes(good.read_bytes()[: 1536 + 16384 + BLOCK_SIZE])
    with pytest.raises(VhdError, match="truncated"):
        verify(cut)
    packed = tmp_path / "cut.vhd.bz2"
    packed.write_bytes(bz2.compress(good.read_bytes())[:-200])
    with pytest.raises(VhdError, match=r"bzip2 stream|truncated"):
        verify(packed)
    out = tmp_path / "out.raw"
    with pytest.raises(VhdError):
        vhd_to_raw(cut, out)
    assert not out.exists(), "nothing half-written"


def test_not_a_vhd(tmp_path: Path) -> None:
    other = tmp_path / "x.vhd"
    other.write_bytes(b"QFI\xfb" + bytes(600))
    with pytest.raises(VhdError, match="neither a dynamic VHD"):
        read_vhd(other)


def test_footer_fields(tmp_path: Path) -> None:
    vhd = tmp_path / "d.vhd"
    raw_to_vhd(make_raw(tmp_path / "disk.raw"), vhd, created_at=1_800_000_000)
    footer = Footer.unpack(vhd.read_bytes()[:512], "footer copy")
    assert footer.creator_app == b"tap\x00" and footer.disk_type == 3
    assert footer.current_size == footer.original_size == SIZE
    assert footer.created.startswith("2027-01-15")
