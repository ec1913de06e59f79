"""Digests of the upload pass (sha256, part count as s3transfer cuts it), and the
sparse-file helpers every pass uses read no hole and write none."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from s3transfer.utils import ChunksizeAdjuster

from core.files import SparseWriter, data_extents, sha256_file
from core.redact import Redactor
from publish.buildid import is_build_id, make_build_id, order_key
from publish.upload_digests import DigestingReader, FileDigests, part_layout

MiB = 1 << 20


def read_all(data: bytes, pieces: int, part: int, threshold: int, n: int) -> DigestingReader:
    """Feed `data` in `pieces` uneven blocks, read it back `n` bytes at a time."""
    cut = sorted({len(data) * i // pieces for i in range(pieces + 1)})
    blocks = [data[a:b] for a, b in itertools.pairwise(cut)]
    r = DigestingReader(blocks, part_size=part, threshold=threshold)
    out = b""
    while chunk := r.read(n):
        assert len(chunk) == n or not r.read(1)  # only the last read is short
        out += chunk
    assert out == data
    return r


def test_multipart_sha256_and_part_count() -> None:
    data = bytes(range(256)) * (13 * MiB // 256)  # 13 MiB: parts 5 + 5 + 3
    d = read_all(data, 7, 5 * MiB, 5 * MiB, 5 * MiB).digests
    assert d.multipart and d.parts == 3 and d.size == len(data)
    assert d.sha256 == hashlib.sha256(data).hexdigest()


def test_single_part() -> None:
    d = read_all(b"hello", 2, 5 * MiB, 5 * MiB, 1 << 20).digests
    assert not d.multipart and d.parts == 1 and d.sha256 == hashlib.sha256(b"hello").hexdigest()


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 3 * 4096 + 17), pieces=st.integers(1, 9), n=st.integers(1, 5000))
def test_any_block_and_read_sizes_give_the_same_digests(size: int, pieces: int, n: int) -> None:
    data = hashlib.shake_256(str(size).encode()).digest(size)
    d = read_all(data, pieces, 4096, 4096, n).digests
    assert d.parts == max(-(-size // 4096), 1)
    assert d.multipart == (size >= 4096) and d.sha256 == hashlib.sha256(data).hexdigest()


def test_end_check_runs_once_before_the_last_read_returns() -> None:
    seen: list[FileDigests] = []

    def refuse(d: FileDigests) -> None:
        seen.append(d)
        raise ValueError("source changed")

    r = DigestingReader([b"a" * 10, b"b" * 10], part_size=8, threshold=8, on_end=refuse)
    assert r.read(8) == b"a" * 8
    with pytest.raises(ValueError, match="source changed"):
        r.read(100)
    assert len(seen) == 1 and seen[0].size == 20
    assert not r.seekable() and r.readable()


def test_digests_before_the_end_are_refused() -> None:
    r = DigestingReader([b"abc"], part_size=8, threshold=8)
    r.read(1)
    with pytest.raises(RuntimeError, match="before the stream was read"):
        _ = r.digests


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=0, max_value=1 << 45))
def test_part_layout_follows_s3transfer(size: int) -> None:
    multipart, part = part_layout(size, 64 * MiB, 64 * MiB)
    assert multipart == (size >= 64 * MiB)
    if multipart:
        assert part == ChunksizeAdjuster().adjust_chunksize(64 * MiB, size)
        assert -(-size // part) <= 10_000


def test_empty_stream() -> None:
    d = read_all(b"", 1, 5 * MiB, 5 * MiB, 100).digests
    assert d.size == 0 and d.parts == 1 and d.sha256 == hashlib.sha256(b"").hexdigest()


def sparse(path: Path, size: int, extents: list[tuple[int, bytes]]) -> None:
    with path.open("wb") as fh:
        fh.truncate(size)
        for offset, data in extents:
            fh.seek(offset)
            fh.write(data)


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_sha256_reads_only_data_and_equals_a_plain_hash(tmp_path: Path) -> None:
    f = tmp_path / "disk.raw"
    blob = os.urandom(3 * MiB + 5)
    sparse(f, 64 * MiB, [(MiB, blob), (40 * MiB, b"tail")])
    with f.open("rb") as fh:
        extents = list(data_extents(fh.fileno(), 64 * MiB))
    assert sum(e - s for s, e in extents) < 8 * MiB  # the holes are not visited
    assert sha256_file(f) == hashlib.sha256(f.read_bytes()).hexdigest()
    dense = tmp_path / "dense"
    dense.write_bytes(blob)
    assert sha256_file(dense) == hashlib.sha256(blob).hexdigest()


def chunks(data: bytes, n: int) -> Iterator[bytes]:
    for i in range(0, len(data), n):
        yield data[i : i + n]


@pytest.mark.parametrize("step", [4096, 1000, MiB])
def test_sparse_writer_keeps_zero_blocks_holes(tmp_path: Path, step: int) -> None:
    data = bytes(8 * MiB) + os.urandom(MiB) + bytes(3 * MiB) + b"x" * 100 + bytes(2 * MiB)
    out = tmp_path / "out"
    with out.open("wb") as fh, SparseWriter(fh) as w:
        for piece in chunks(data, step):
            w.write(piece)
    assert out.read_bytes() == data
    assert allocated(out) <= MiB + 64 * 1024  # the random MiB and the block holding "x"s


def test_build_id_sorts_by_time_and_carries_revision() -> None:
    a = make_build_id(1_700_000_000, "ABCDEF0123456789", False)
    b = make_build_id(1_700_000_060, "0000000000000000", True)
    assert a == "20231114T221320Z-abcdef012345" and is_build_id(a)
    assert b.endswith("-dirty") and is_build_id(b) and b > a
    assert make_build_id(1.0, None, None).endswith("-norev")
    # an old commit rebuilt later still orders before a newer commit
    assert order_key(100.0, 999.0) < order_key(200.0, 150.0)


def test_redactor_masks_plain_and_url_encoded(tmp_path: Path) -> None:
    secret = "s3cr/t+key"
    r = Redactor([secret, "ab"])  # too short to redact safely: ignored
    assert r(f"x={secret} y=s3cr%2Ft%2Bkey") == "x=*** y=***"
    quoted = Redactor(['pa"ss\\word'])
    assert quoted(json.dumps({"k": 'pa"ss\\word'})) == '{"k": "***"}'
    src, dst = tmp_path / "in.log", tmp_path / "out.log"
    src.write_bytes(f"line1 {secret}\nab line2\n".encode())
    r.file(src, dst)
    assert dst.read_bytes() == b"line1 ***\nab line2\n"
