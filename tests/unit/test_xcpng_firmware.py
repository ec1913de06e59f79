"""The firmware an XVA made from a raw disk starts with, read from the disk's partition table
(the local base disk is UEFI-only: the old conversion's default `bios` could not boot it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from platforms.xcpng.firmware import disk_firmware

pytestmark = pytest.mark.skipif(shutil.which("sfdisk") is None, reason="apt-get install fdisk")

ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def disk(tmp_path: Path, label: str, parts: list[str], boot_code: bool = False) -> Path:
    path = tmp_path / f"{label}-{len(parts)}-{boot_code}.raw"
    with path.open("wb") as fh:
        fh.truncate(64 << 20)
    script = f"label: {label}\n" + "".join(f"size=8M, type={t}\n" for t in parts)
    subprocess.run(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(path)],
        input=script,
        text=True,
        check=True,
        capture_output=True,
    )
    if boot_code:
        with path.open("r+b") as fh:
            fh.write(b"\xeb\x63\x90" + b"GRUB" * 20)  # what grub-install puts in the MBR
    return path


def test_gpt_with_an_esp_only_is_uefi(tmp_path: Path) -> None:
    assert disk_firmware(disk(tmp_path, "gpt", [ESP, LINUX])) == "uefi"


def test_gpt_with_a_bios_boot_partition_is_bios(tmp_path: Path) -> None:
    assert disk_firmware(disk(tmp_path, "gpt", [BIOS_BOOT, LINUX])) == "bios"
    assert disk_firmware(disk(tmp_path, "gpt", [BIOS_BOOT, ESP, LINUX])) == "bios"  # hybrid


def test_mbr(tmp_path: Path) -> None:
    assert disk_firmware(disk(tmp_path, "dos", ["83"], boot_code=True)) == "bios"
    assert disk_firmware(disk(tmp_path, "dos", ["ef", "83"])) == "uefi"
    assert disk_firmware(disk(tmp_path, "dos", ["ef", "83"], boot_code=True)) == "bios"


def test_no_partition_table_is_bios(tmp_path: Path) -> None:
    blank = tmp_path / "blank.raw"
    blank.write_bytes(bytes(1 << 20))
    assert disk_firmware(blank) == "bios"
    tiny = tmp_path / "tiny.raw"
    tiny.write_bytes(b"\x55\xaa")
    assert disk_firmware(tiny) == "bios"
