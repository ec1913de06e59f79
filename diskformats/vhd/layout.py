"""The VHD footer and dynamic disk header: packed, unpacked and checksummed as the spec says.

The checksum of either structure is the one's complement of the sum of its bytes, the checksum
field itself counted as zero. The geometry (cylinders, heads, sectors per track) follows the
specification's appendix; the disk's size is the footer's current size, which readers take as the
truth for the creator application written here (see CREATOR_APP).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from diskformats.vhd import BLOCK_SIZE, SECTOR, VhdError

FOOTER_COOKIE = b"conectix"
HEADER_COOKIE = b"cxsparse"
FOOTER_SIZE = SECTOR
HEADER_SIZE = 2 * SECTOR
FEATURES = 0x00000002  # "reserved", always set
VERSION = 0x00010000
NO_OFFSET = 0xFFFFFFFFFFFFFFFF
UNUSED = 0xFFFFFFFF  # a BAT entry of a block never written
DISK_FIXED, DISK_DYNAMIC, DISK_DIFFERENCING = 2, 3, 4
DISK_TYPES = {DISK_FIXED: "fixed", DISK_DYNAMIC: "dynamic", DISK_DIFFERENCING: "differencing"}
# The creator application XenServer's own VHD tools (tapdisk, vhd-util) write. Readers take the
# disk's size from the footer for it (qemu's block/vpc.c: 'tap\0', 'qem2', 'win ', 'd2v ', 'CTXS')
# instead of rounding it to the CHS geometry, which would cut the end of a disk whose size is not a
# whole number of cylinders.
CREATOR_APP = b"tap\x00"
CREATOR_VERSION = 0x00010003
CREATOR_OS = b"Wi2k"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
FOOTER_FORMAT = ">8sIIQI4sI4sQQHBBII16sB427s"
HEADER_FORMAT = ">8sQQIIII16sII512s192s256s"
MAX_CHS_SECTORS = 65535 * 16 * 255


def checksum(data: bytes, field_at: int) -> int:
    """One's complement of the byte sum, the 4-byte checksum field at `field_at` counted as 0."""
    total = sum(data) - sum(data[field_at : field_at + 4])
    return ~total & 0xFFFFFFFF


def geometry(size: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) for a disk of `size` bytes (the spec's appendix)."""
    total = min(size // SECTOR, MAX_CHS_SECTORS)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


@dataclass(frozen=True)
class Footer:
    current_size: int
    original_size: int
    disk_type: int
    data_offset: int  # the dynamic header's offset (NO_OFFSET for a fixed disk)
    timestamp: int  # seconds since 2000-01-01 UTC
    unique_id: bytes
    creator_app: bytes = CREATOR_APP
    geometry: tuple[int, int, int] = (0, 0, 0)
    checksum: int = 0
    saved_state: int = 0

    def pack(self) -> bytes:
        cyl, heads, spt = self.geometry
        raw = struct.pack(
            FOOTER_FORMAT,
            FOOTER_COOKIE,
            FEATURES,
            VERSION,
            self.data_offset,
            self.timestamp,
            self.creator_app,
            CREATOR_VERSION,
            CREATOR_OS,
            self.original_size,
            self.current_size,
            cyl,
            heads,
            spt,
            self.disk_type,
            0,
            self.unique_id,
            self.saved_state,
            bytes(427),
        )
        return raw[:64] + struct.pack(">I", checksum(raw, 64)) + raw[68:]

    @classmethod
    def unpack(cls, data: bytes, where: str) -> Footer:
        if len(data) != FOOTER_SIZE:
            raise VhdError(f"{len(data)} bytes where a 512-byte footer belongs (truncated)", where)
        f = struct.unpack(FOOTER_FORMAT, data)
        if f[0] != FOOTER_COOKIE:
            raise VhdError(f"cookie {f[0]!r}, expected {FOOTER_COOKIE!r}: not a VHD footer", where)
        if f[14] != checksum(data, 64):
            raise VhdError(f"checksum {f[14]:#010x} does not match its bytes", where)
        if f[2] >> 16 != 1:
            raise VhdError(f"file format version {f[2]:#010x}, only 1.x exists", where)
        if f[13] not in DISK_TYPES:
            raise VhdError(f"disk type {f[13]}, expected 2, 3 or 4", where)
        return cls(
            current_size=f[9],
            original_size=f[8],
            disk_type=f[13],
            data_offset=f[3],
            timestamp=f[4],
            unique_id=f[15],
            creator_app=f[5],
            geometry=(f[10], f[11], f[12]),
            checksum=f[14],
            saved_state=f[16],
        )

    @property
    def created(self) -> str:
        return datetime.fromtimestamp(EPOCH + self.timestamp, UTC).isoformat()


@dataclass(frozen=True)
class DynamicHeader:
    table_offset: int
    max_table_entries: int
    block_size: int = BLOCK_SIZE
    checksum: int = 0

    def pack(self) -> bytes:
        raw = struct.pack(
            HEADER_FORMAT,
            HEADER_COOKIE,
            NO_OFFSET,
            self.table_offset,
            VERSION,
            self.max_table_entries,
            self.block_size,
            0,
            bytes(16),
            0,
            0,
            bytes(512),
            bytes(192),
            bytes(256),
        )
        return raw[:36] + struct.pack(">I", checksum(raw, 36)) + raw[40:]

    @classmethod
    def unpack(cls, data: bytes, where: str = "dynamic header") -> DynamicHeader:
        if len(data) != HEADER_SIZE:
            raise VhdError(f"{len(data)} bytes where the 1024-byte header belongs", where)
        h = struct.unpack(HEADER_FORMAT, data)
        if h[0] != HEADER_COOKIE:
            raise VhdError(f"cookie {h[0]!r}, expected {HEADER_COOKIE!r}", where)
        if h[6] != checksum(data, 36):
            raise VhdError(f"checksum {h[6]:#010x} does not match its bytes", where)
        if h[3] >> 16 != 1:
            raise VhdError(f"header version {h[3]:#010x}, only 1.x exists", where)
        block_size = h[5]
        if block_size < SECTOR or block_size & (block_size - 1):
            raise VhdError(f"block size {block_size} is not a power of two of sectors", where)
        return cls(table_offset=h[2], max_table_entries=h[4], block_size=block_size, checksum=h[6])


def bitmap_size(block_size: int) -> int:
    """Bytes of a block's sector bitmap: one bit per sector, padded to a whole sector."""
    bits = block_size // SECTOR
    return -(-bits // 8 // SECTOR) * SECTOR if bits >= 8 else SECTOR


def bat_size(entries: int) -> int:
    return -(-entries * 4 // SECTOR) * SECTOR


def unique_id_for(seed: bytes) -> bytes:
    """A stable unique id: the same raw disk gives the same VHD, byte for byte."""
    return uuid.UUID(bytes=seed[:16], version=4).bytes


def timestamp_for(epoch: float) -> int:
    return max(0, int(epoch - EPOCH)) & 0xFFFFFFFF
