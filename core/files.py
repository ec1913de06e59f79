"""Files the harness writes: whole or not at all, hashed in one place, shown relative.

Every record, report and pointer appears by rename of a finished temporary file beside it, so
a reader (another xdist worker, the publish step, an operator) never sees half of one.

Disk images are sparse (an 8 GiB disk holding 1 GiB of data): `data_extents` finds their data
with SEEK_DATA/SEEK_HOLE so that hashing, conversion and copies never read the holes, and
`SparseWriter` keeps what it writes sparse.

The temporary file is named after its owner (core.ownership): what a killed writer left beside
the same target is removed by the next writer.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import xxhash

from core.ownership import stale_entries, tag
from core.trees import remove_trees

BLOCK = 1 << 20
SPARSE_BLOCK = 4096  # a filesystem block: the unit a hole is made of
_ZEROS = bytes(BLOCK)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644, fsync: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary file that replaces `path` only when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_trees(stale_entries(path.parent, (f".{path.name}.pid",)))
    fd, tmp = tempfile.mkstemp(prefix=tag(f".{path.name}"), suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644, fsync: bool = False) -> Path:
    with atomic_writer(path, mode, fsync) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    return path


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> Path:
    return write_atomic(path, json.dumps(data, indent=2) + "\n", mode)


def read_json(path: Path) -> Any | None:
    """The JSON in `path`, or None when it is missing or not (yet) valid."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every region of the first `size` bytes that may hold data, in order.

    Holes (SEEK_HOLE) are left out; a filesystem that cannot tell yields one extent.
    """
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole remains
                return
            yield pos, size  # no SEEK_DATA here (EINVAL): everything may be data
            return
        if start >= size:
            return
        yield start, end
        pos = end


def feed_zeros(h: Any, n: int) -> None:
    """Hash `n` zero bytes (a hole) without reading or allocating them."""
    zeros = memoryview(_ZEROS)
    while n > 0:
        step = min(n, BLOCK)
        h.update(zeros[:step])
        n -= step


def _extent_blocks(fh: IO[bytes], start: int, end: int) -> Iterator[bytes]:
    """The bytes of [start, end) in BLOCK pieces; fewer if the file shrank under us."""
    fh.seek(start)
    left = end - start
    while left > 0 and (block := fh.read(min(BLOCK, left))):
        left -= len(block)
        yield block


def sha256_file(path: Path) -> str:
    """sha256 of a file, reading only its data: holes are hashed as the zeros they read as."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        pos = 0
        for start, end in data_extents(fh.fileno(), size):
            feed_zeros(h, start - pos)
            pos = start
            for block in _extent_blocks(fh, start, end):
                h.update(block)
                pos += len(block)
            if pos < end:  # the file shrank under us: hash what is there, as a reader would
                break
        else:
            feed_zeros(h, size - pos)
    return h.hexdigest()


def data_seal(path: Path) -> str:
    """xxh3-128 of a file's data regions and where they lie: a fingerprint 20 times cheaper
    than sha256_file on a sparse disk (it neither hashes the holes' zeros nor uses a
    cryptographic hash). Equal seals mean equal contents; a different seal may still be the
    same contents laid out otherwise (a hole written as zeros), so it is a fast path only."""
    h = xxhash.xxh3_128()
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        h.update(f"{size};".encode())
        for start, end in data_extents(fh.fileno(), size):
            h.update(f"{start}:{end};".encode())
            for block in _extent_blocks(fh, start, end):
                h.update(block)
    return h.hexdigest()


class SparseWriter:
    """Writes a stream into a file, seeking over all-zero filesystem blocks so they stay holes.

    Blocks are judged at their place in the file (multiples of SPARSE_BLOCK), whatever the sizes
    of the writes. `close()` (or leaving the `with`) writes what is pending and sets the final
    size, which also makes a trailing run of zeros a hole. The file must be new (or empty).
    """

    def __init__(self, fh: IO[bytes]):
        self.fh = fh
        self.pos = 0  # file offset of the next byte given
        self._pending = bytearray()  # the start of a block not complete yet, at pos - len

    def __enter__(self) -> SparseWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_at(self, offset: int, data: bytes | memoryview) -> None:
        self._flush()
        self.pos = offset
        self.write(data)

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        gap = -self.pos % SPARSE_BLOCK
        if gap:  # complete the block the last write left unfinished
            take = view[:gap]
            self._pending += take
            self.pos += len(take)
            view = view[len(take) :]
            if self.pos % SPARSE_BLOCK:
                return total
            self._flush()
        whole = len(view) - len(view) % SPARSE_BLOCK
        self._put_blocks(view[:whole])
        self._pending += view[whole:]
        self.pos += len(view) - whole
        return total

    def _put_blocks(self, view: memoryview) -> None:
        zero = memoryview(_ZEROS)[:SPARSE_BLOCK]
        run = 0  # start of the current run of data blocks in view
        for i in range(0, len(view), SPARSE_BLOCK):
            if view[i : i + SPARSE_BLOCK] == zero:
                self._put(self.pos + run, view[run:i])
                run = i + SPARSE_BLOCK
        self._put(self.pos + run, view[run:])
        self.pos += len(view)

    def _put(self, offset: int, view: memoryview | bytearray) -> None:
        if not view:
            return
        if self.fh.tell() != offset:
            self.fh.seek(offset)
        self.fh.write(view)

    def _flush(self) -> None:
        if self._pending and self._pending != _ZEROS[: len(self._pending)]:
            self._put(self.pos - len(self._pending), self._pending)
        self._pending = bytearray()

    def close(self, size: int | None = None) -> None:
        """Write what is pending and set the final size (default: everything given)."""
        self._flush()
        self.fh.truncate(self.pos if size is None else size)


def display_path(path: Path | str | None, root: Path) -> str | None:
    """`path` relative to `root` when it lies below it, else as it is (for records and logs)."""
    if path is None:
        return None
    p = Path(path)
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)
