"""Digests computed in the same read pass as the upload: sha256 plus what S3 reports back.

`DigestingReader` is the file object the upload reads. It hands out the bytes of a stream once,
front to back, and hashes them as they go: sha256 of the whole and, when the store takes
request checksums, the CRC32 of each part (S3's composite checksum is the CRC of those) in
exactly the part layout s3transfer uses. It is deliberately not seekable: s3transfer then reads
each part once into memory and botocore signs, sends and retries a part from that copy, so the
file is never read a second time and a retried part cannot count twice in the digests.

No MD5 (the ETag) is computed: it cost more than the rest of the pass together, and each part
is already checked by the store on receipt (its SigV4-signed SHA-256, or its CRC32).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from s3transfer.utils import ChunksizeAdjuster

from core.files import BLOCK


@dataclass
class FileDigests:
    size: int
    sha256: str
    multipart: bool
    part_size: int
    parts: int = 0  # as uploaded: a multipart object's ETag ends with "-<parts>"
    part_crc32: list[int] = field(default_factory=list)
    crc32: int | None = None  # of the whole object (FULL_OBJECT checksum type)

    def expected_crc32(self, full_object: bool = False) -> str | None:
        """Base64 CRC32 as S3 reports it: of the whole object for a PUT or a FULL_OBJECT
        checksum, else the CRC of the part CRCs (COMPOSITE, multipart)."""
        if self.crc32 is None:
            return None
        if full_object or not self.multipart:
            value = self.crc32
        else:
            value = zlib.crc32(b"".join(c.to_bytes(4, "big") for c in self.part_crc32))
        return base64.b64encode(value.to_bytes(4, "big")).decode()


def part_layout(size: int, threshold: int, chunksize: int) -> tuple[bool, int]:
    """(multipart?, part size) exactly as s3transfer will choose them for `size` bytes."""
    if size < threshold:
        return False, max(chunksize, 1)
    return True, ChunksizeAdjuster().adjust_chunksize(chunksize, size)


def file_blocks(path: Path) -> Iterator[bytes]:
    """A file's bytes in BLOCK-sized pieces, read once."""
    with path.open("rb") as fh:
        while block := fh.read(BLOCK):
            yield block


class DigestingReader:
    """A read-once, non-seekable file object over `blocks` that digests what it hands out.

    `part_size` must be the part size the upload will use (`part_layout` of the size or of an
    upper bound of it); whether the upload was multipart is known at the end (size >= threshold,
    as s3transfer decides for a stream). `on_end(digests)` runs when the stream is exhausted,
    before the last read returns: an exception there fails the upload before it completes.
    """

    def __init__(
        self,
        blocks: Iterable[bytes],
        *,
        part_size: int,
        threshold: int,
        crc: bool = True,
        on_end: Callable[[FileDigests], None] | None = None,
    ):
        self._blocks = iter(blocks)
        self.part_size, self.threshold = part_size, threshold
        self._crc = crc
        self._on_end = on_end
        self._pending = memoryview(b"")
        self._sha = hashlib.sha256()
        self._part_crc = 0
        self._full_crc = 0
        self._in_part = 0
        self.position = 0
        self._digests = FileDigests(size=0, sha256="", multipart=False, part_size=part_size)
        self.finished = False

    # -- the file-object interface s3transfer and the folder store use ---------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        """Exactly `n` bytes (all of them for n < 0) unless the stream ends first."""
        out: list[bytes | memoryview] = []
        want = n if n >= 0 else None
        got = 0
        while want is None or got < want:
            if not self._pending:
                block = next(self._blocks, None)
                if block is None:
                    self._finish()
                    break
                self._pending = memoryview(block)
                continue
            take = self._pending if want is None else self._pending[: want - got]
            self._pending = self._pending[len(take) :]
            self._digest(take)
            out.append(take)
            got += len(take)
        return b"".join(out)

    # -- digests -------------------------------------------------------------------------

    def _digest(self, data: memoryview) -> None:
        self._sha.update(data)
        self.position += len(data)
        while data:
            piece = data[: self.part_size - self._in_part]
            if self._crc:
                self._part_crc = zlib.crc32(piece, self._part_crc)
                self._full_crc = zlib.crc32(piece, self._full_crc)
            self._in_part += len(piece)
            data = data[len(piece) :]
            if self._in_part == self.part_size:
                self._close_part()

    def _close_part(self) -> None:
        self._digests.parts += 1
        if self._crc:
            self._digests.part_crc32.append(self._part_crc)
            self._part_crc = 0
        self._in_part = 0

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self._in_part or self.position == 0:
            self._close_part()
        d = self._digests
        d.size = self.position
        d.sha256 = self._sha.hexdigest()
        d.multipart = self.position >= self.threshold
        d.crc32 = self._full_crc if self._crc else None
        if self._on_end is not None:
            self._on_end(d)

    @property
    def digests(self) -> FileDigests:
        """The digests of everything read; only once the stream is exhausted."""
        if not self.finished:
            raise RuntimeError("digests asked for before the stream was read to its end")
        return self._digests
