"""Streaming XVA reader: verifies member order and checksums and rebuilds raw disks.

It reads the tar once, front to back, and follows xen-api's `Stream_vdi.recv_all_vdi`: disks
come in VDI-ref order; within a disk, chunk numbers strictly increase, a gap counts as that many
zero chunks of the first chunk's length, a disk ends once its `virtual_size` is reached (so its
last chunk is always present), and each chunk is followed by `<chunk>.xxhash` (XXH64, 16 hex
digits) or `<chunk>.checksum` (SHA-1). Any deviation raises `XvaError` naming the member at
fault.

Compression is detected as XAPI's `import.ml` does, by content: a plain tar, else a zstd frame
(magic 28 b5 2f fd), else gzip. Anything else (xz, bzip2) is refused here because a pool would
refuse it too.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import xxhash
import zstandard

from core.files import SparseWriter, atomic_writer
from diskformats.xva import MAX_MEMBER, XvaError, ovaxml
from diskformats.xva.ovaxml import Disk

ChunkSink = Callable[[Disk, int, bytes], None]  # (disk, offset, data)
BLOCKSIZE = tarfile.BLOCKSIZE
ZERO_BLOCK = bytes(BLOCKSIZE)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
REFUSED = {b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2"}
# what a damaged compressed stream raises while it is read
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.ReadError,
    EOFError,
    OSError,
    zlib.error,
    zstandard.ZstdError,
)


@dataclass
class DiskStats:
    disk: Disk
    chunks: int = 0  # chunk members read (data actually present in the file)
    stored_bytes: int = 0


@dataclass
class XvaInfo:
    """What a verified XVA holds."""

    vm: dict[str, Any]
    disks: list[DiskStats] = field(default_factory=list)
    compression: str = "none"  # "none", "gzip" or "zstd", as the file starts

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "compression": self.compression,
            "disks": [
                {
                    "ref": s.disk.ref,
                    "name": s.disk.name,
                    "userdevice": s.disk.userdevice,
                    "virtual_size": s.disk.size,
                    "chunks": s.chunks,
                    "stored_bytes": s.stored_bytes,
                }
                for s in self.disks
            ],
        }


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff the format), put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self.head, self.rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def compression_of(head: bytes) -> str:
    """`none`, `zstd` or `gzip` for an XVA starting with `head` (its first 512 bytes or more)."""
    if _plausible_tar(head):
        return "none"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    for magic, name in REFUSED.items():
        if head.startswith(magic):
            raise XvaError(
                f"compressed with {name}, which XCP-ng's import does not read (it reads plain "
                "tar, zstd and gzip): recompress it with zstd or gzip"
            )
    raise XvaError(
        "not a tar archive, nor zstd or gzip data: not an XVA (XAPI would fail with a gzip error)"
    )


def _plausible_tar(head: bytes) -> bool:
    """A tar header block whose checksum matches (what XAPI tries first)."""
    try:
        tarfile.TarInfo.frombuf(head[:512], tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def open_stream(fileobj: IO[bytes]) -> tuple[IO[bytes], str]:
    """The plain tar stream inside `fileobj`, and the compression it was stored with."""
    head = fileobj.read(512)
    kind = compression_of(head)
    raw: IO[bytes]
    if fileobj.seekable():  # a file: read it again from where it started
        fileobj.seek(-len(head), os.SEEK_CUR)
        raw = fileobj
    else:  # a pipe or a socket: put the sniffed bytes back in front
        raw = io.BufferedReader(_Prefixed(head, fileobj), buffer_size=1 << 20)
    if kind == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(
            raw, read_size=1 << 20, read_across_frames=True, closefd=False
        )
        return cast(IO[bytes], reader), kind
    if kind == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")), kind
    return raw, kind


class _Members:
    """Tar members one at a time, with their data, memory bounded by one member.

    The 512-byte headers are parsed by `tarfile.TarInfo.frombuf` (checksum, ustar and v7
    fields) but the stream is walked here: tarfile's stream mode copies every member's data
    twice and keeps every TarInfo it has seen, which halved the verify throughput."""

    def __init__(self, fileobj: IO[bytes]):
        self.stream, self.compression = open_stream(fileobj)
        self.last: str | None = None
        self._unread: tarfile.TarInfo | None = None  # a member whose data was not read

    def _read(self, n: int, member: str | None) -> bytes:
        parts, left = [], n
        try:
            while left > 0 and (block := self.stream.read(left)):
                parts.append(block)
                left -= len(block)
        except STREAM_ERRORS as exc:
            after = f" in or after member {member!r}" if member else ""
            raise XvaError(f"truncated or corrupt data{after} ({exc})", member) from None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def next(self) -> tarfile.TarInfo | None:
        if self._unread is not None:
            self.read(self._unread, limit=1 << 62)
        header = self._read(BLOCKSIZE, self.last)
        if not header or header == ZERO_BLOCK:
            return None  # the end-of-archive blocks, or the end of the stream
        after = f" after member {self.last!r}" if self.last else ""
        if len(header) < BLOCKSIZE:
            raise XvaError(f"truncated tar data{after}: the archive ends in a header", self.last)
        try:
            member = tarfile.TarInfo.frombuf(header, tarfile.ENCODING, "surrogateescape")
        except tarfile.HeaderError as exc:
            raise XvaError(f"corrupt tar header{after} ({exc})", self.last) from None
        self.last, self._unread = member.name, member
        return member

    def read(self, member: tarfile.TarInfo, limit: int = MAX_MEMBER) -> bytes:
        if not member.isfile():
            raise XvaError(f"{member.name}: not a regular file", member.name)
        if member.size > limit:
            raise XvaError(
                f"{member.name}: {member.size} bytes, larger than any XVA chunk", member.name
            )
        self._unread = None
        data = self._read(member.size, member.name)
        if len(data) != member.size:
            raise XvaError(
                f"{member.name}: truncated, the archive ends inside this member "
                f"({len(data)} of {member.size} bytes)",
                member.name,
            )
        self._read(-member.size % BLOCKSIZE, member.name)  # padding (may be cut at the end)
        return data


def _checksum_ok(kind: str, text: bytes, data: bytes) -> tuple[bool, str, str]:
    claimed = text.decode("ascii", errors="replace").strip()
    if kind == ".xxhash":
        actual = xxhash.xxh64(data).hexdigest().upper()
        return claimed.upper() == actual, claimed, actual
    actual = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    return claimed.lower() == actual, claimed, actual


def read_header(members: _Members) -> dict[str, Any]:
    first = members.next()
    if first is None:
        raise XvaError("empty archive: an XVA starts with ova.xml")
    if first.name != "ova.xml":
        raise XvaError(
            f"first member is {first.name!r}, not ova.xml (XAPI: IMPORT_ERROR_UNEXPECTED_FILE)",
            first.name,
        )
    if first.size > ovaxml.MAX_HEADER:
        raise XvaError(f"ova.xml is {first.size} bytes: too large for a header", "ova.xml")
    try:
        data = members.read(first, limit=ovaxml.MAX_HEADER)
    except XvaError:
        raise XvaError("ova.xml: truncated", "ova.xml") from None
    return ovaxml.parse(data)


def _read_disk(members: _Members, disk: Disk, sink: ChunkSink | None, stats: DiskStats) -> None:
    prefix = disk.ref + "/"
    offset, last_no, last_name, first_len = 0, -1, None, -1
    while offset < disk.size:
        member = members.next()
        if member is None:
            at = f" after {last_name}" if last_name else ""
            raise XvaError(
                f"{disk.ref}: archive ends{at} at byte {offset} of {disk.size}: truncated "
                "(a complete XVA always carries its last chunk)",
                last_name or disk.ref,
            )
        name = member.name
        suffix = name[len(prefix) :] if name.startswith(prefix) else ""
        if not suffix.isdigit():
            raise XvaError(
                f"{name}: expected a chunk of {disk.ref} here (after {last_name or 'ova.xml'}): "
                "misordered or foreign member",
                name,
            )
        number = int(suffix)
        if number <= last_no:
            raise XvaError(
                f"{name}: chunk numbers must increase, but it comes after {last_name}: misordered",
                name,
            )
        data = members.read(member)
        if first_len < 0:
            first_len = len(data)
        offset += (number - last_no - 1) * first_len  # gaps are zero chunks
        if offset + len(data) > disk.size:
            raise XvaError(
                f"{name}: ends at byte {offset + len(data)}, past the end of {disk.ref} "
                f"({disk.size} bytes)",
                name,
            )
        check = members.next()
        kind = os.path.splitext(check.name)[1] if check is not None else ""
        if check is None or check.name != name + kind or kind not in (".xxhash", ".checksum"):
            found = repr(check.name) if check is not None else "the end of the archive"
            raise XvaError(
                f"{name}: no checksum member follows it (expected {name}.xxhash or "
                f"{name}.checksum, found {found})",
                name,
            )
        ok, claimed, actual = _checksum_ok(kind, members.read(check), data)
        if not ok:
            raise XvaError(
                f"{name}: checksum mismatch ({check.name} says {claimed!r}, data hashes to "
                f"{actual!r}): the chunk or its checksum is corrupt",
                name,
            )
        if sink is not None:
            sink(disk, offset, data)
        stats.chunks += 1
        stats.stored_bytes += len(data)
        offset += len(data)
        last_no, last_name = number, name


def scan(fileobj: IO[bytes], sink: ChunkSink | None = None) -> XvaInfo:
    """Read and verify a whole XVA stream, handing each verified chunk to `sink`."""
    members = _Members(fileobj)
    header = read_header(members)
    info = XvaInfo(vm=ovaxml.vm_summary(header), compression=members.compression)
    for disk in ovaxml.disks(header):
        stats = DiskStats(disk)
        _read_disk(members, disk, sink, stats)
        info.disks.append(stats)
    extra = members.next()
    if extra is not None:
        raise XvaError(
            f"{extra.name}: unexpected member after the last disk's last chunk", extra.name
        )
    return info


def header_only(xva_path: Path) -> dict[str, Any]:
    """Parse ova.xml without reading the disks (cheap, for `info`)."""
    with _open(xva_path) as fh:
        return read_header(_Members(fh))


@contextlib.contextmanager
def _open(path: Path) -> Iterator[IO[bytes]]:
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise XvaError(f"cannot open {path}: {exc.strerror}") from None
    with fh:
        yield fh


def verify(xva_path: Path) -> XvaInfo:
    """Check a whole XVA (order, checksums, completeness) without writing anything."""
    with _open(xva_path) as fh:
        return scan(fh)


class _DiskSink:
    """Writes one disk's chunks into a raw file; zero blocks stay holes (SparseWriter)."""

    def __init__(self, out: SparseWriter, ref: str):
        self.out, self.ref = out, ref

    def __call__(self, disk: Disk, offset: int, data: bytes) -> None:
        if disk.ref == self.ref:
            self.out.write_at(offset, data)


def xva_to_raw(xva_path: Path, raw_path: Path, disk: str | None = None) -> None:
    """Verify `xva_path` and write one disk (the boot disk by default) to `raw_path`, sparse.

    The raw file appears only once the whole XVA verified; on any error nothing is left behind.
    """
    header = header_only(xva_path)
    found = ovaxml.disks(header)
    if not found:
        raise XvaError(f"{xva_path}: ova.xml describes no disk to extract", "ova.xml")
    if disk is None:
        chosen = min(found, key=lambda d: (not d.userdevice.isdigit(), d.userdevice, d.ref))
    else:
        matches = [d for d in found if d.ref == disk]
        if not matches:
            have = ", ".join(d.ref for d in found)
            raise XvaError(f"{xva_path}: no disk {disk!r}; disks: {have}")
        chosen = matches[0]
    raw_path = Path(raw_path)
    with atomic_writer(raw_path) as out, _open(xva_path) as fh:
        sparse = SparseWriter(out)
        scan(fh, _DiskSink(sparse, chosen.ref))
        sparse.close(chosen.size)
