"""Which firmware a raw disk boots with, read from its partition table, so that an XVA made
from it starts the way the disk was built (the local base disk is UEFI-only: a GPT with an EFI
system partition and no BIOS boot partition; an installer's BIOS disk has MBR boot code).

- GPT with an EFI system partition and no BIOS boot partition: `uefi`;
- an MBR whose only way to boot is an EFI partition (type 0xEF, no boot code): `uefi`;
- anything else: `bios` (XAPI's own default).
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path
from typing import BinaryIO

SECTOR = 512
ESP = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
BIOS_BOOT = uuid.UUID("21686148-6449-6e6f-744e-656564454649")
MAX_ENTRIES = 1024


def _gpt_types(f: BinaryIO, disk_size: int) -> set[uuid.UUID] | None:
    """Partition type GUIDs of the primary GPT, or None when there is none."""
    f.seek(SECTOR)
    header = f.read(92)
    if len(header) < 92 or header[:8] != b"EFI PART":
        return None
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if not (128 <= entry_size <= 1024) or count > MAX_ENTRIES:
        return None
    start = entries_lba * SECTOR
    if start + count * entry_size > disk_size:
        return None
    f.seek(start)
    table = f.read(count * entry_size)
    types = set()
    for i in range(count):
        raw = table[i * entry_size : i * entry_size + 16]
        if len(raw) == 16 and raw != bytes(16):
            types.add(uuid.UUID(bytes_le=raw))
    return types


def disk_firmware(raw: Path) -> str:
    """`uefi` or `bios` for the raw disk image at `raw`."""
    size = raw.stat().st_size
    with raw.open("rb") as fh:
        mbr = fh.read(SECTOR)
        if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
            return "bios"
        kinds = [mbr[446 + 16 * i + 4] for i in range(4)]
        if 0xEE in kinds:
            types = _gpt_types(fh, size)
            if types is not None:
                return "uefi" if ESP in types and BIOS_BOOT not in types else "bios"
        boot_code = mbr[:440]
        if 0xEF in kinds and not boot_code.strip(b"\x00"):
            return "uefi"
    return "bios"
