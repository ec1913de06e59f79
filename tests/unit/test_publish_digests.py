"""Local digests must equal what S3 reports: ETag (MD5 of part MD5s) and composite CRC32."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from s3transfer.utils import ChunksizeAdjuster

from core.redact import Redactor
from publish.buildid import is_build_id, make_build_id, order_key
from publish.digests import digest_file, part_layout

MiB = 1 << 20


def test_multipart_etag_and_composite_crc(tmp_path: Path) -> None:
    data = bytes(range(256)) * (13 * MiB // 256)  # 13 MiB: parts 5 + 5 + 3
    f = tmp_path / "a.bin"
    f.write_bytes(data)
    d = digest_file(f, threshold=5 * MiB, chunksize=5 * MiB)
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    assert d.multipart and len(d.part_md5) == 3
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert d.expected_etag() == hashlib.md5(md5s).hexdigest() + "-3"
    crcs = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    assert d.expected_crc32() == base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode()
    assert d.sha256 == hashlib.sha256(data).hexdigest()


def test_single_part_uses_plain_md5_and_full_crc(tmp_path: Path) -> None:
    f = tmp_path / "b.bin"
    f.write_bytes(b"hello")
    d = digest_file(f, threshold=5 * MiB, chunksize=5 * MiB)
    assert not d.multipart
    assert d.expected_etag() == hashlib.md5(b"hello").hexdigest()
    assert d.expected_crc32() == base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big")).decode()


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=0, max_value=1 << 45))
def test_part_layout_follows_s3transfer(size: int) -> None:
    multipart, part = part_layout(size, 64 * MiB, 64 * MiB)
    assert multipart == (size >= 64 * MiB)
    if multipart:
        assert part == ChunksizeAdjuster().adjust_chunksize(64 * MiB, size)
        assert -(-size // part) <= 10_000


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty"
    f.write_bytes(b"")
    d = digest_file(f, 5 * MiB, 5 * MiB)
    assert d.size == 0 and d.expected_etag() == hashlib.md5(b"").hexdigest()


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
