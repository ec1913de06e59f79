"""The base disk's layout, built by the real basedisk.sh from a tiny stand-in root: a BIOS boot
partition holding GRUB's core.img (found by boot.img in the MBR) beside the EFI system partition,
the root last. The boots themselves (SeaBIOS and OVMF, every check) are the local pipeline's."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from diskformats.bootdisk import BIOS_BOOT, ESP, boot_modes, detect_firmware
from platforms.local.basedisk import SCRIPT

TOOLS = (
    "grub-mkimage",
    "grub-mkstandalone",
    "mkfs.vfat",
    "mcopy",
    "sfdisk",
    "mkfs.ext4",
    "qemu-img",
)
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS) or not Path("/usr/lib/grub/i386-pc").is_dir(),
    reason="apt-get install grub-pc-bin grub-efi-amd64-bin mtools dosfstools fdisk qemu-utils",
)
SIZE_MB = 256


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("basedisk")
    root = tmp / "root"
    (root / "etc").mkdir(parents=True)
    (root / "vmlinuz").write_bytes(b"kernel")
    (root / "initrd.img").write_bytes(b"initrd")
    tar = tmp / "root.tar"
    with tarfile.open(tar, "w") as t:
        t.add(root, arcname=".")
    out = tmp / "base.qcow2"
    env = {**os.environ, "BASEDISK_ROOT_TAR": str(tar)}
    run = subprocess.run(
        ["bash", str(SCRIPT), str(out), str(SIZE_MB), str(tmp / "work"), "bookworm", "http://x", "p"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    raw = tmp / "base.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(out), str(raw)], check=True)
    return raw


def test_partitions_bios_boot_first_root_last(disk: Path) -> None:
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True,
                                      text=True, check=True).stdout)["partitiontable"]  # fmt: skip
    parts = {p["name"]: p for p in table["partitions"]}
    assert parts["BIOS"]["start"] == 2048 and parts["BIOS"]["size"] == 2048
    assert parts["ESP"]["start"] == 4096
    assert parts["rootfs"]["start"] + parts["rootfs"]["size"] <= table["lastlba"] + 1
    assert max(p["start"] for p in table["partitions"]) == parts["rootfs"]["start"]
    fd = os.open(disk, os.O_RDONLY)
    try:
        assert boot_modes(fd) == ["bios", "uefi"]
        assert detect_firmware(fd) == "bios"  # what an XVA of it starts with
    finally:
        os.close(fd)
    assert BIOS_BOOT != ESP


def test_grub_for_bios_is_installed_by_hand(disk: Path) -> None:
    data = disk.open("rb")
    with data:
        mbr = data.read(512)
        data.seek(2048 * 512)
        core = data.read(512)
    boot_img = Path("/usr/lib/grub/i386-pc/boot.img").read_bytes()
    assert mbr[0x66:0x68] == b"\x90\x90"  # the drive check jumped over, as for a hard disk
    assert struct.unpack_from("<Q", mbr, 0x5C)[0] == 2048  # boot.img loads core.img from here
    assert mbr[0x68:440] == boot_img[0x68:440] and mbr[:0x5C] == boot_img[:0x5C]
    assert mbr[510:512] == b"\x55\xaa" and mbr[450] == 0xEE  # the protective MBR kept
    start, length, segment = struct.unpack_from("<QHH", core, 500)
    assert (start, segment) == (2049, 0x820) and 200 < length < 2048
    assert core[:16] == Path("/usr/lib/grub/i386-pc/diskboot.img").read_bytes()[:16]
