"""Digests computed in the same read pass as the upload: the sha256 published in metadata.json.

`DigestingReader` is the file object the upload reads. It hands out the bytes of a stream once,
front to back, hashes them as they go and counts the parts in exactly the layout s3transfer
uses. It is deliberately not seekable: s3transfer then reads each part once into memory and
botocore signs, sends and retries a part from that copy, so the file is never read a second
time and a retried part cannot count twice.

Nothing else is computed: each part is checked by the store on receipt (its SigV4-signed
SHA-256, or the CRC32 botocore sends with `when_supported`), as a bare boto3 upload relies on;
a local MD5 for the ETag cost more than the rest of the pass together. The hashing runs on a
thread of its own, fed in order, so the reads that feed the upload never wait for it.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.files import BLOCK


@dataclass
class FileDigests:
    size: int
    sha256: str
    multipart: bool
    part_size: int
    parts: int = 0  # as uploaded: a multipart object's ETag ends with "-<parts>"


MAX_PARTS = 10_000  # S3's limits on a multipart upload
MIN_PART, MAX_PART = 5 << 20, 5 << 30


def part_layout(size: int, threshold: int, chunksize: int) -> tuple[bool, int]:
    """(multipart?, part size) for `size` bytes: the chunk size doubled until the parts fit in
    S3's 10,000, as boto3's own transfer does for a file of known size."""
    if size < threshold:
        return False, max(chunksize, 1)
    part = chunksize
    while -(-size // part) > MAX_PARTS:
        part *= 2
    return True, min(max(part, MIN_PART), MAX_PART)


def file_blocks(path: Path, size: int = BLOCK) -> Iterator[bytes]:
    """A file's bytes in `size` pieces, read once."""
    with path.open("rb", buffering=0) as fh:
        while block := fh.read(size):
            yield block


class _Hasher(threading.Thread):
    """sha256 of the pieces it is given, in order, on a thread of its own: the thread that feeds
    the upload only slices and queues (on a busy machine, hashing inline put the publisher a
    third behind a bare upload)."""

    def __init__(self) -> None:
        super().__init__(name="publish-hasher", daemon=True)
        self.queue: queue.Queue[memoryview | None] = queue.Queue(maxsize=16)
        self.sha = hashlib.sha256()

    def run(self) -> None:
        while (piece := self.queue.get()) is not None:
            self.sha.update(piece)


class DigestingReader:
    """A read-once, non-seekable file object over `blocks` that digests what it hands out.

    `part_size` must be the part size the upload will use (`part_layout` of the size or of an
    upper bound of it); whether the upload was multipart is known at the end (size >= threshold,
    as s3transfer decides for a stream). `on_end(digests)` runs when the stream is exhausted,
    before the last read returns: an exception there fails the upload before it completes.
    `progress(n)` is told of every read (the upload sends what was read moments later).
    """

    def __init__(
        self,
        blocks: Iterable[bytes],
        *,
        part_size: int,
        threshold: int,
        on_end: Callable[[FileDigests], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ):
        self._blocks = iter(blocks)
        self.part_size, self.threshold = part_size, threshold
        self._on_end = on_end
        self._progress = progress
        self._pending = memoryview(b"")
        self._hasher = _Hasher()
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
        out: list[memoryview] = []
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
        if self._progress is not None:
            self._progress(got)
        if len(out) == 1 and isinstance(out[0].obj, bytes) and len(out[0]) == len(out[0].obj):
            return out[0].obj  # a whole block: hand it on without a copy
        return b"".join(out)

    # -- digests -------------------------------------------------------------------------

    def _digest(self, data: memoryview) -> None:
        if not self._hasher.is_alive():
            self._hasher.start()
        self._hasher.queue.put(data)
        self.position += len(data)
        self._in_part += len(data)
        full, self._in_part = divmod(self._in_part, self.part_size)
        self._digests.parts += full

    def close(self) -> None:
        """Stop the hashing thread (also when the upload failed half-way)."""
        if self._hasher.is_alive():
            self._hasher.queue.put(None)
            self._hasher.join()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self._in_part or self.position == 0:
            self._digests.parts += 1
        self.close()
        d = self._digests
        d.size = self.position
        d.sha256 = self._hasher.sha.hexdigest()
        d.multipart = self.position >= self.threshold
        if self._on_end is not None:
            self._on_end(d)

    @property
    def digests(self) -> FileDigests:
        """The digests of everything read; only once the stream is exhausted."""
        if not self.finished:
            raise RuntimeError("digests asked for before the stream was read to its end")
        return self._digests
