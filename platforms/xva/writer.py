"""Streaming XVA writer: a raw disk becomes an XVA a pool can import.

Layout as xen-api `stream_vdi.ml` and Xen Orchestra write it: `ova.xml` first, then 1 MiB
chunks `Ref:3/%08d`, each followed by `.xxhash` (XXH64, seed 0, 16 uppercase hex digits);
all-zero chunks are skipped except the first and the last. Holes of a sparse input are found
with SEEK_DATA/SEEK_HOLE and never read.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import xxhash

from core.files import atomic_writer
from platforms.xva import CHUNK_SIZE, XvaError, ovaxml

DISK_REF = "Ref:3"  # the VDI id ovaxml.build gives the single disk


def _data_chunks(fd: int, size: int) -> Iterator[int]:
    """Chunk numbers that may hold data, in order (all of them if the filesystem can't tell)."""
    try:
        os.lseek(fd, 0, os.SEEK_HOLE)
    except OSError:
        yield from range((size + CHUNK_SIZE - 1) // CHUNK_SIZE)
        return
    pos, seen = 0, -1
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole remains
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        last = (end - 1) // CHUNK_SIZE
        yield from range(max(start // CHUNK_SIZE, seen + 1), last + 1)
        seen, pos = max(seen, last), max(end, pos + 1)


def _chunks_to_visit(fd: int, size: int) -> Iterator[int]:
    """The first chunk, every chunk that may hold data, the last chunk: what an XVA carries."""
    last = (size - 1) // CHUNK_SIZE
    yield 0
    yield from (n for n in _data_chunks(fd, size) if 0 < n < last)
    if last > 0:
        yield last


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _write_chunk(tar: tarfile.TarFile, number: int, data: bytes) -> None:
    name = f"{DISK_REF}/{number:08d}"
    _add(tar, name, data)
    _add(tar, name + ".xxhash", xxhash.xxh64(data).hexdigest().upper().encode())


def raw_to_xva(
    raw_path: Path,
    xva_path: Path,
    name: str,
    *,
    memory: int = 1 << 30,
    vcpus: int = 1,
    firmware: str = "bios",
    template: bool = False,
) -> None:
    """Write `raw_path` as a one-disk XVA of a VM called `name`; atomic (temp file, rename)."""
    raw_path, xva_path = Path(raw_path), Path(xva_path)
    try:
        src = raw_path.open("rb")
    except OSError as exc:
        raise XvaError(f"cannot open {raw_path}: {exc.strerror}") from None
    with src, atomic_writer(xva_path) as out:
        size = os.fstat(src.fileno()).st_size
        if size == 0:
            raise XvaError(f"{raw_path} is empty: nothing to put in an XVA")
        header = ovaxml.build(
            name, size, memory=memory, vcpus=vcpus, firmware=firmware, template=template
        )
        last = (size - 1) // CHUNK_SIZE
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            _add(tar, "ova.xml", header)
            zero = bytes(CHUNK_SIZE)
            for n in _chunks_to_visit(src.fileno(), size):
                src.seek(n * CHUNK_SIZE)
                data = src.read(CHUNK_SIZE)
                if n in (0, last) or data != zero[: len(data)]:
                    _write_chunk(tar, n, data)
                cast(Any, tar).members.clear()  # tarfile keeps every TarInfo otherwise
