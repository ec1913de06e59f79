"""Streaming XVA writer: a raw disk becomes an XVA a pool can import.

Layout as xen-api `stream_vdi.ml` and Xen Orchestra write it: `ova.xml` first, then 1 MiB
chunks `Ref:3/%08d`, each followed by `.xxhash` (XXH64, seed 0, 16 uppercase hex digits);
all-zero chunks are left out except the first and the last, as XAPI's own export does. Holes of
a sparse input are found with SEEK_DATA/SEEK_HOLE and never read.

The tar is produced as a stream of byte blocks (`xva_stream`), optionally compressed in a form
XAPI's `/import` detects by itself (`import.ml`: plain tar, zstd magic, else gzip; XCP-ng 8.2
and 8.3 both read all three), so the same code writes a file (`raw_to_xva`) or feeds an upload
without a temporary copy.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import xxhash

from core.files import atomic_writer, data_extents, feed_zeros
from diskformats.bootdisk import detect_firmware
from diskformats.xva import CHUNK_SIZE, XvaError, ovaxml

DISK_REF = "Ref:3"  # the VDI id ovaxml.build gives the single disk
COMPRESSIONS = ("zstd", "gzip", "none")
# Chosen by measurement (docs/publishing/xva.md): zstd level 3 makes the Debian 12
# image's XVA 3.6 times smaller than plain tar (0.29 of its data), written at ~130 MiB/s of data
# here, and the `zstd -d` XAPI forks on import unpacks it faster than a pool's link or SR moves
# it; gzip unpacks slower than a gigabit link.
DEFAULT_COMPRESSION = "zstd"
DEFAULT_LEVELS = {"zstd": 3, "gzip": 6, "none": 0}
BLOCKSIZE = tarfile.BLOCKSIZE
RECORDSIZE = tarfile.RECORDSIZE  # GNU tar and Python's tarfile pad the archive to 10 KiB


class _Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class _Plain:
    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def encoder(compression: str, level: int | None = None) -> _Encoder:
    """A streaming compressor whose output XAPI's import detects (zstd frame or gzip member)."""
    if compression not in COMPRESSIONS:
        raise XvaError(f"unknown compression {compression!r}; choose {', '.join(COMPRESSIONS)}")
    lvl = DEFAULT_LEVELS[compression] if level is None else level
    if compression == "gzip":
        return zlib.compressobj(lvl, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    if compression == "zstd":
        import zstandard

        # threads=-1: one worker per core; the frame stays a single standard zstd frame
        return zstandard.ZstdCompressor(level=lvl, threads=-1).compressobj()
    return _Plain()


@dataclass(frozen=True)
class XvaOptions:
    """How the VM in the XVA is described and how the stream is encoded."""

    name: str
    memory: int = 1 << 30
    vcpus: int = 1
    firmware: str = "auto"  # "auto": read from the disk's partition table (bootdisk.py)
    template: bool = False
    description: str = ""
    compression: str = "none"
    level: int | None = None


def _chunks_to_visit(fd: int, size: int) -> Iterator[int]:
    """The first chunk, every chunk that may hold data, the last chunk: what an XVA carries."""
    last = (size - 1) // CHUNK_SIZE
    yield 0
    seen = 0
    for start, end in data_extents(fd, size):
        first = max(start // CHUNK_SIZE, seen + 1)
        stop = min((end - 1) // CHUNK_SIZE, last - 1)
        yield from range(first, stop + 1)
        seen = max(seen, stop)
    if last > 0:
        yield last


def size_problem(size: int, what: str = "the raw disk") -> None:
    """Refuse a disk XAPI could not import: its last chunk must be whole 512-byte blocks, since
    `stream_vdi.ml` reads the checksum member's header right after a chunk's data, before the
    chunk's tar padding."""
    if size % BLOCKSIZE:
        padded = size + (-size % BLOCKSIZE)
        raise XvaError(
            f"{what} is {size} bytes, not a multiple of 512: XAPI's import reads the last "
            "chunk's checksum header where its padding is and refuses such an XVA; pad the disk "
            f"(truncate -s {padded} FILE) or export it again"
        )


def visited_chunks(fd: int, size: int) -> int:
    """How many chunks `xva_stream` will read: an upper bound of the chunks it writes."""
    return sum(1 for _ in _chunks_to_visit(fd, size))


def _member(name: str, data: bytes | memoryview) -> list[bytes | memoryview]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    header = info.tobuf(tarfile.USTAR_FORMAT, tarfile.ENCODING, "surrogateescape")
    pad = -len(data) % BLOCKSIZE
    return [header, data, bytes(pad)] if pad else [header, data]


def _chunk_members(number: int, data: bytes | memoryview) -> list[bytes | memoryview]:
    name = f"{DISK_REF}/{number:08d}"
    digest = xxhash.xxh64(data).hexdigest().upper().encode()
    return _member(name, data) + _member(name + ".xxhash", digest)


def xva_stream(
    fd: int, size: int, options: XvaOptions, source_hash: Any | None = None
) -> Iterator[bytes]:
    """The XVA of the raw disk open at `fd` (`size` bytes), as encoded byte blocks.

    `source_hash` (a hashlib object) is fed every byte of the raw disk in order, holes as zeros,
    so the disk's own digest comes out of the same read pass.
    """
    if size <= 0:
        raise XvaError("the raw disk is empty: nothing to put in an XVA")
    size_problem(size)
    firmware = detect_firmware(fd) if options.firmware == "auto" else options.firmware
    header = ovaxml.build(
        options.name,
        size,
        memory=options.memory,
        vcpus=options.vcpus,
        firmware=firmware,
        template=options.template,
        description=options.description,
    )
    enc = encoder(options.compression, options.level)
    written = 0

    def emit(parts: list[bytes | memoryview]) -> bytes:
        nonlocal written
        block = b"".join(parts)
        written += len(block)
        return enc.compress(block)

    if out := emit(_member("ova.xml", header)):
        yield out
    last = (size - 1) // CHUNK_SIZE
    buf = bytearray(CHUNK_SIZE)
    zero = memoryview(bytes(CHUNK_SIZE))
    hashed = 0
    for n in _chunks_to_visit(fd, size):
        start = n * CHUNK_SIZE
        length = min(CHUNK_SIZE, size - start)
        view = memoryview(buf)[:length]
        got = os.preadv(fd, [view], start)
        if got != length:
            raise XvaError(f"the raw disk shrank while it was read (at byte {start + got})")
        if source_hash is not None:
            feed_zeros(source_hash, start - hashed)
            source_hash.update(view)
            hashed = start + length
        keep = n in (0, last) or view != zero[:length]
        if keep and (out := emit(_chunk_members(n, view))):
            yield out
    if source_hash is not None:
        feed_zeros(source_hash, size - hashed)
    end = 2 * BLOCKSIZE
    end += -(written + end) % RECORDSIZE
    if out := emit([bytes(end)]):
        yield out
    if out := enc.flush():
        yield out


def raw_to_xva(
    raw_path: Path,
    xva_path: Path,
    name: str,
    *,
    memory: int = 1 << 30,
    vcpus: int = 1,
    firmware: str = "auto",
    template: bool = False,
    description: str = "",
    compression: str = "none",
    level: int | None = None,
) -> None:
    """Write `raw_path` as a one-disk XVA of a VM called `name`; atomic (temp file, rename)."""
    options = XvaOptions(name, memory, vcpus, firmware, template, description, compression, level)
    raw_path, xva_path = Path(raw_path), Path(xva_path)
    try:
        src = raw_path.open("rb")
    except OSError as exc:
        raise XvaError(f"cannot open {raw_path}: {exc.strerror}") from None
    with src:
        size = os.fstat(src.fileno()).st_size
        if size == 0:
            raise XvaError(f"{raw_path} is empty: nothing to put in an XVA")
        size_problem(size, str(raw_path))
        _write(src.fileno(), size, options, xva_path)


def _write(fd: int, size: int, options: XvaOptions, xva_path: Path) -> None:
    with atomic_writer(xva_path) as out:
        for block in xva_stream(fd, size, options):
            out.write(block)
