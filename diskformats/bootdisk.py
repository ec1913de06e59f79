"""How a raw disk boots, read from its partition table: the firmware its VM record must ask for,
and every boot mode it supports.

An XVA carries the firmware in `HVM_boot_params.firmware`; a UEFI-only disk imported as `bios`
(XAPI's default) does not boot. The disk says which it is:

- GPT with an EFI system partition and no BIOS boot partition: `uefi` only;
- GPT with a BIOS boot partition (GRUB's core.img for BIOS) and an ESP: both, started as `bios`
  (XCP-ng's and CloudStack's default; the local platform's images since the BIOS boot partition,
  as Debian's own cloud images are laid out);
- GPT with a BIOS boot partition only, or an MBR-only disk: `bios`.

Format-independent (an XVA and a VHD are both written from the raw disk), so it lives beside the
formats, not inside one.
"""

from __future__ import annotations

import os
import struct
import uuid

SECTOR = 512
ESP = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b").bytes_le
BIOS_BOOT = uuid.UUID("21686148-6449-6e6f-744e-656564454649").bytes_le
MAX_ENTRIES = 1024  # GPT allows more, no disk image has them


def partition_types(fd: int) -> list[bytes] | None:
    """Type GUIDs (as stored, little-endian) of the GPT's used entries, or None if no GPT."""
    header = os.pread(fd, 92, SECTOR)
    if len(header) < 92 or header[:8] != b"EFI PART":
        return None
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if entry_size < 128 or count == 0:
        return None
    count = min(count, MAX_ENTRIES)
    table = os.pread(fd, count * entry_size, entries_lba * SECTOR)
    types = []
    for i in range(len(table) // entry_size):
        kind = table[i * entry_size : i * entry_size + 16]
        if kind != bytes(16):
            types.append(kind)
    return types


def detect_firmware(fd: int) -> str:
    """`uefi` or `bios` for the raw disk open at `fd` (see the module docstring)."""
    types = partition_types(fd)
    if types is not None and ESP in types and BIOS_BOOT not in types:
        return "uefi"
    return "bios"


def boot_modes(fd: int) -> list[str]:
    """Every firmware the raw disk open at `fd` boots under: ["bios"], ["uefi"] or both.

    A GPT disk needs a BIOS boot partition for BIOS (GRUB's core.img lives there) and an ESP
    for UEFI; a disk without GPT boots by BIOS only (its MBR code)."""
    types = partition_types(fd)
    if types is None:
        return ["bios"]
    return [mode for mode, kind in (("bios", BIOS_BOOT), ("uefi", ESP)) if kind in types]
