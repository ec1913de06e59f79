"""Streaming VHD reader: verifies a dynamic VHD (plain or bzip2'd) and converts it back to raw.

It reads the file once, front to back, so a `.vhd.bz2` is checked while it is unpacked: the
footer copy at offset 0, the dynamic header it points to, the block allocation table, then every
allocated block in the order of its place in the file (each must lie after the table, inside the
file and apart from the others), and the footer at the end, which must equal the copy. Any
deviation raises VhdError naming the structure at fault. Blocks whose sector bitmap leaves a
sector out read as zeros there, as the specification says for a disk without a parent.
"""

from __future__ import annotations

import bz2
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.files import SparseWriter, atomic_writer
from diskformats.vhd import SECTOR, VhdError
from diskformats.vhd.layout import (
    DISK_DYNAMIC,
    DISK_TYPES,
    FOOTER_COOKIE,
    FOOTER_SIZE,
    HEADER_SIZE,
    UNUSED,
    DynamicHeader,
    Footer,
    bat_size,
    bitmap_size,
)

BZIP2_MAGIC = b"BZh"
READ = 1 << 20
BlockSink = Callable[[int, memoryview], None]  # (byte offset in the disk, data)


@dataclass
class VhdInfo:
    """What a verified VHD holds."""

    size: int  # the disk's size (footer's current size)
    block_size: int
    blocks: int  # BAT entries
    allocated: int  # blocks stored
    compression: str  # "none" or "bzip2", as the file starts
    file_size: int  # bytes of the (uncompressed) VHD
    creator: str
    created: str
    disk_type: str = "dynamic"
    stored_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Stream:
    """A forward-only reader that knows its position (a bzip2 stream cannot seek back)."""

    def __init__(self, fh: IO[bytes]):
        self.fh, self.pos = fh, 0

    def read(self, n: int, what: str) -> bytes:
        data = self.fh.read(n)
        self.pos += len(data)
        if len(data) != n:
            raise VhdError(
                f"the file ends at byte {self.pos}, inside it (truncated: a partial download?)",
                what,
            )
        return data

    def skip_to(self, offset: int, what: str) -> None:
        if offset < self.pos:
            raise VhdError(
                f"at byte {offset}, which overlaps what precedes it (byte {self.pos})", what
            )
        while self.pos < offset:
            self.read(min(READ, offset - self.pos), what)

    def rest(self) -> tuple[bytes, int]:
        """The last 512 bytes and the total length, reading to the end."""
        tail = b""
        while chunk := self.fh.read(READ):
            self.pos += len(chunk)
            tail = (tail + chunk)[-FOOTER_SIZE:]
        return tail, self.pos


def compression_of(head: bytes) -> str:
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(FOOTER_COOKIE):
        return "none"
    raise VhdError(
        "neither a dynamic VHD (no 'conectix' footer copy at offset 0) nor bzip2 data; a fixed "
        "VHD or another format: convert it with qemu-img convert -O vpc -o subformat=dynamic",
        "footer copy",
    )


def read_vhd(path: Path, sink: BlockSink | None = None) -> VhdInfo:
    """Verify the VHD at `path`, handing each stored block's data to `sink`."""
    try:
        raw = Path(path).open("rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise VhdError(f"cannot open {path}: {exc.strerror}") from None
    with raw:
        compression = compression_of(raw.read(8))
        raw.seek(0)
        if compression == "none":
            return _read(_Stream(raw), compression, sink)
        with bz2.BZ2File(raw) as unpacked:
            try:
                return _read(_Stream(unpacked), compression, sink)
            except (OSError, EOFError, ValueError) as exc:  # a damaged bzip2 stream
                raise VhdError(f"unreadable compressed data ({exc})", "bzip2 stream") from None


def _read(s: _Stream, compression: str, sink: BlockSink | None) -> VhdInfo:
    copy_bytes = s.read(FOOTER_SIZE, "footer copy")
    copy = Footer.unpack(copy_bytes, "footer copy")
    if copy.disk_type != DISK_DYNAMIC:
        raise VhdError(
            f"a {DISK_TYPES[copy.disk_type]} disk; only dynamic VHDs are read here", "footer copy"
        )
    s.skip_to(copy.data_offset, "dynamic header")
    header = DynamicHeader.unpack(s.read(HEADER_SIZE, "dynamic header"))
    bs = header.block_size
    if header.max_table_entries * bs < copy.current_size:
        raise VhdError(
            f"{header.max_table_entries} blocks of {bs} bytes cover less than the disk's "
            f"{copy.current_size} bytes",
            "block allocation table",
        )
    s.skip_to(header.table_offset, "block allocation table")
    table = s.read(bat_size(header.max_table_entries), "block allocation table")
    entries = [
        int.from_bytes(table[i * 4 : i * 4 + 4], "big") for i in range(header.max_table_entries)
    ]
    bitmap_len = bitmap_size(bs)
    stride = bitmap_len + bs
    after_table = header.table_offset + len(table)
    stored = sorted((e * SECTOR, n) for n, e in enumerate(entries) if e != UNUSED)
    info = VhdInfo(
        size=copy.current_size,
        block_size=bs,
        blocks=header.max_table_entries,
        allocated=len(stored),
        compression=compression,
        file_size=0,
        creator=copy.creator_app.decode("latin-1").rstrip("\0 "),
        created=copy.created,
    )
    for offset, n in stored:
        what = f"block {n} (BAT entry, at byte {offset})"
        if offset < after_table:
            raise VhdError("lies inside the headers or the table", what)
        if n * bs >= copy.current_size:
            raise VhdError(f"is past the disk's end ({copy.current_size} bytes)", what)
        s.skip_to(offset, what)
        bitmap = s.read(bitmap_len, what)
        data = memoryview(bytearray(s.read(bs, what)))
        if bitmap != b"\xff" * bitmap_len:
            _apply_bitmap(data, bitmap)
        info.stored_bytes += bs
        if sink is not None:
            keep = min(bs, copy.current_size - n * bs)
            sink(n * bs, data[:keep])
    tail, total = s.rest()
    info.file_size = total
    if stored and total < stored[-1][0] + stride + FOOTER_SIZE:
        raise VhdError("the file ends before its footer", "footer")
    Footer.unpack(tail, "footer (last 512 bytes)")
    if tail != copy_bytes:
        raise VhdError("differs from the footer copy at offset 0", "footer (last 512 bytes)")
    return info


def _apply_bitmap(data: memoryview, bitmap: bytes) -> None:
    """Zero every sector whose bit is clear (most significant bit first)."""
    for sector in range(len(data) // SECTOR):
        if not bitmap[sector // 8] & (0x80 >> (sector % 8)):
            data[sector * SECTOR : (sector + 1) * SECTOR] = bytes(SECTOR)


def verify(path: Path) -> VhdInfo:
    return read_vhd(path)


def vhd_to_raw(path: Path, raw_path: Path) -> VhdInfo:
    """Verify `path` and write its disk as a sparse raw image; atomic (nothing on failure)."""
    with atomic_writer(Path(raw_path)) as out:
        writer = SparseWriter(out)
        info = read_vhd(path, writer.write_at)
        writer.close(info.size)  # the disk's size, a run of zeros at its end included
    return info
