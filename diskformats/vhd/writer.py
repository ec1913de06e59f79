"""Streaming VHD writer: a raw disk becomes a dynamic VHD in one read pass, optionally bzip2'd.

The block allocation table must precede the blocks, so it is computed first from the disk's data
map alone (SEEK_DATA/SEEK_HOLE: no read): a 2 MiB block that lies wholly in holes is left out of
the file (BAT entry 0xFFFFFFFF) and never read; every other block is read once, in order, and
stored after a full sector bitmap. The file's size is known before the first byte is written
(`vhd_size`), which an upload's multipart layout and a progress line both use.

The output is deterministic: the same raw disk (and build time) gives the same bytes, so a
published VHD can be checked against a rebuild and a re-run never sees a different artifact.
"""

from __future__ import annotations

import bz2
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.files import atomic_writer, data_extents, feed_zeros
from diskformats.vhd import BLOCK_SIZE, COMPRESSIONS, SECTOR, VhdError
from diskformats.vhd.layout import (
    DISK_DYNAMIC,
    FOOTER_SIZE,
    HEADER_SIZE,
    UNUSED,
    DynamicHeader,
    Footer,
    bat_size,
    bitmap_size,
    geometry,
    timestamp_for,
    unique_id_for,
)

BZIP2_LEVEL = 9  # bzip2's own default; CloudStack unpacks with bunzip2
FULL_BITMAP = b"\xff" * bitmap_size(BLOCK_SIZE)  # every sector of a stored block is present


class _Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class _Plain:
    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def encoder(compression: str) -> _Encoder:
    if compression not in COMPRESSIONS:
        raise VhdError(f"unknown compression {compression!r}; choose {', '.join(COMPRESSIONS)}")
    return bz2.BZ2Compressor(BZIP2_LEVEL) if compression == "bzip2" else _Plain()


@dataclass(frozen=True)
class Layout:
    """Where everything of the VHD of one raw disk goes."""

    size: int  # the raw disk's size: the VHD's current size
    blocks: int  # max table entries
    allocated: tuple[int, ...]  # block numbers stored, ascending

    @property
    def table_offset(self) -> int:
        return FOOTER_SIZE + HEADER_SIZE

    @property
    def first_block_offset(self) -> int:
        return self.table_offset + bat_size(self.blocks)

    @property
    def stride(self) -> int:
        return bitmap_size(BLOCK_SIZE) + BLOCK_SIZE

    @property
    def file_size(self) -> int:
        return self.first_block_offset + len(self.allocated) * self.stride + FOOTER_SIZE

    def bat(self) -> bytes:
        entries = [UNUSED] * self.blocks
        for i, n in enumerate(self.allocated):
            entries[n] = (self.first_block_offset + i * self.stride) // SECTOR
        table = b"".join(e.to_bytes(4, "big") for e in entries)
        return table + b"\xff" * (bat_size(self.blocks) - len(table))


def plan(fd: int, size: int) -> Layout:
    """The layout of the VHD of the raw disk open at `fd`, from its data map (nothing read)."""
    if size <= 0:
        raise VhdError("the raw disk is empty: nothing to put in a VHD")
    if size % SECTOR:
        raise VhdError(f"the raw disk's size ({size} bytes) is not a whole number of sectors")
    blocks = -(-size // BLOCK_SIZE)
    allocated: list[int] = []
    for start, end in data_extents(fd, size):
        first, last = start // BLOCK_SIZE, (end - 1) // BLOCK_SIZE
        if allocated and allocated[-1] >= first:
            first = allocated[-1] + 1
        allocated.extend(range(first, last + 1))
    return Layout(size, blocks, tuple(allocated))


def vhd_size(fd: int, size: int) -> int:
    """The size of the uncompressed VHD of this raw disk, exactly."""
    return plan(fd, size).file_size


def footer_for(size: int, created_at: float, seed: bytes) -> Footer:
    return Footer(
        current_size=size,
        original_size=size,
        disk_type=DISK_DYNAMIC,
        data_offset=FOOTER_SIZE,
        timestamp=timestamp_for(created_at),
        unique_id=unique_id_for(seed),
        geometry=geometry(size),
    )


def vhd_stream(
    fd: int,
    size: int,
    *,
    created_at: float,
    compression: str = "none",
    source_hash: Any | None = None,
    seed: bytes | None = None,
) -> Iterator[bytes]:
    """The VHD of the raw disk open at `fd` (`size` bytes), as encoded byte blocks.

    `source_hash` (a hashlib object) is fed every byte of the raw disk in order, holes as zeros,
    so the disk's digest comes out of the same read pass. `seed` makes the unique id (default:
    derived from the size and time, so the same input gives the same file)."""
    layout = plan(fd, size)
    enc = encoder(compression)
    seed = seed or hashlib.sha256(f"{size}:{created_at}".encode()).digest()
    footer = footer_for(size, created_at, seed).pack()
    header = DynamicHeader(layout.table_offset, layout.blocks).pack()
    if out := enc.compress(footer + header + layout.bat()):
        yield out
    buf = bytearray(BLOCK_SIZE)
    hashed = 0
    for n in layout.allocated:
        start = n * BLOCK_SIZE
        length = min(BLOCK_SIZE, size - start)
        view = memoryview(buf)
        got = os.preadv(fd, [view[:length]], start)
        if got != length:
            raise VhdError(f"the raw disk shrank while it was read (at byte {start + got})")
        if length < BLOCK_SIZE:
            view[length:] = bytes(BLOCK_SIZE - length)  # a last, partial block: zero padded
        if source_hash is not None:
            feed_zeros(source_hash, start - hashed)
            source_hash.update(view[:length])
            hashed = start + length
        if out := enc.compress(FULL_BITMAP + bytes(view)):
            yield out
    if source_hash is not None:
        feed_zeros(source_hash, size - hashed)
    if out := enc.compress(footer):
        yield out
    if out := enc.flush():
        yield out


def raw_to_vhd(
    raw_path: Path, vhd_path: Path, *, compression: str = "none", created_at: float | None = None
) -> None:
    """Write `raw_path` as a dynamic VHD (bzip2'd with compression="bzip2"); atomic."""
    raw_path, vhd_path = Path(raw_path), Path(vhd_path)
    try:
        src = raw_path.open("rb")
    except OSError as exc:
        raise VhdError(f"cannot open {raw_path}: {exc.strerror}") from None
    with src, atomic_writer(vhd_path) as out:
        stat = os.fstat(src.fileno())
        when = stat.st_mtime if created_at is None else created_at
        blocks = vhd_stream(src.fileno(), stat.st_size, created_at=when, compression=compression)
        for block in blocks:
            out.write(block)
