"""The files inside a file: what the credential scanner opens, within small limits.

tar, gzip, bzip2, xz, zstd and zip, recognised by their magic bytes (not their names), nested
to MAX_DEPTH levels (a .tar.gz is two). Every decompression is bounded (MAX_MEMBER_BYTES per
member, MAX_TOTAL_BYTES per outer file, MAX_MEMBERS members), so a compression bomb costs a few
megabytes, not the machine. What does not open is simply not opened: the outer bytes were
scanned anyway.
"""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import zstandard

MAX_DEPTH = 3
MAX_MEMBER_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 10_000


@dataclass
class Budget:
    """What one outer file may still unpack."""

    bytes: int = MAX_TOTAL_BYTES
    members: int = MAX_MEMBERS

    def take(self, n: int) -> bool:
        self.bytes -= n
        self.members -= 1
        return self.bytes >= 0 and self.members >= 0


def kind(data: bytes) -> str | None:
    if data[:2] == b"\x1f\x8b":
        return "gz"
    if data[:3] == b"BZh":
        return "bz2"
    if data[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return "zst"
    if data[:4] == b"PK\x03\x04":
        return "zip"
    if data[257:262] == b"ustar":
        return "tar"
    return None


def _decompress(data: bytes, what: str, limit: int) -> bytes:
    """At most `limit` bytes of the decompressed stream (b"" when it does not decompress)."""
    try:
        if what == "gz":
            return zlib.decompressobj(wbits=47).decompress(data, limit)
        if what == "bz2":
            return bz2.BZ2Decompressor().decompress(data, limit)
        if what == "xz":
            return lzma.LZMADecompressor().decompress(data, limit)
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
            return reader.read(limit)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error, zstandard.ZstdError):
        return b""


def _members(data: bytes, what: str, budget: Budget) -> Iterator[tuple[str, bytes]]:
    try:
        if what == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    if info.is_dir() or not budget.take(min(info.file_size, MAX_MEMBER_BYTES)):
                        continue
                    with zf.open(info) as fh:
                        yield info.filename, fh.read(MAX_MEMBER_BYTES)
            return
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if not member.isfile() or not budget.take(min(member.size, MAX_MEMBER_BYTES)):
                    continue
                member_file = tar.extractfile(member)
                if member_file is not None:
                    yield member.name, member_file.read(MAX_MEMBER_BYTES)
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, ValueError):
        return  # what was read so far was yielded; a damaged archive ends here


def unpack(
    name: str, data: bytes, depth: int = 0, budget: Budget | None = None
) -> Iterator[tuple[str, bytes]]:
    """(inner name, bytes) of everything inside `data`, nested: `a.tar.gz!etc/x`."""
    budget = budget or Budget()
    what = kind(data)
    if what is None or depth >= MAX_DEPTH or budget.bytes <= 0:
        return
    if what in ("zip", "tar"):
        inner: Iterator[tuple[str, bytes]] = _members(data, what, budget)
    else:
        content = _decompress(data, what, min(MAX_MEMBER_BYTES, max(budget.bytes, 0)))
        if not content or not budget.take(len(content)):
            return
        stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "data"
        inner = (
            iter([(stem, content)]) if kind(content) != "tar" else _members(content, "tar", budget)
        )
    for member, content in inner:
        where = f"{name}!{member}"
        yield where, content
        yield from unpack(where, content, depth + 1, budget)
