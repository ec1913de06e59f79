"""One streaming pass over a file: sha256 plus the per-part MD5/CRC32 that S3 reports back.

The part layout mirrors s3transfer (same threshold, same chunk-size adjustment), so the
ETag and the composite CRC32 the store returns can be compared with local values.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
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
    part_md5: list[bytes] = field(default_factory=list)
    part_crc32: list[int] = field(default_factory=list)
    md5: bytes | None = None
    crc32: int | None = None

    def expected_etag(self) -> str | None:
        if not self.part_md5:
            return None
        if not self.multipart:
            return self.part_md5[0].hex()
        joined = hashlib.md5(b"".join(self.part_md5), usedforsecurity=False).hexdigest()
        return f"{joined}-{len(self.part_md5)}"

    def expected_crc32(self) -> str | None:
        """Base64 CRC32 as S3 reports it: full object for a PUT, CRC of part CRCs for multipart."""
        if self.crc32 is None:
            return None
        if not self.multipart:
            value = self.crc32
        else:
            value = zlib.crc32(b"".join(c.to_bytes(4, "big") for c in self.part_crc32))
        return base64.b64encode(value.to_bytes(4, "big")).decode()


def part_layout(size: int, threshold: int, chunksize: int) -> tuple[bool, int]:
    """(multipart?, part size) exactly as s3transfer will choose them."""
    if size < threshold:
        return False, max(size, 1)
    return True, ChunksizeAdjuster().adjust_chunksize(chunksize, size)


def digest_file(
    path: Path, threshold: int, chunksize: int, md5: bool = True, crc: bool = True
) -> FileDigests:
    size = path.stat().st_size
    multipart, part_size = part_layout(size, threshold, chunksize)
    sha = hashlib.sha256()
    out = FileDigests(size=size, sha256="", multipart=multipart, part_size=part_size)
    full_crc = 0
    with path.open("rb") as f:
        while True:
            part_md5 = hashlib.md5(usedforsecurity=False) if md5 else None
            part_crc = 0
            left = part_size
            got = 0
            while left and (block := f.read(min(BLOCK, left))):
                sha.update(block)
                if part_md5 is not None:
                    part_md5.update(block)
                if crc:
                    part_crc = zlib.crc32(block, part_crc)
                    full_crc = zlib.crc32(block, full_crc)
                left -= len(block)
                got += len(block)
            if got == 0 and (out.part_md5 or out.part_crc32 or size):
                break
            if part_md5 is not None:
                out.part_md5.append(part_md5.digest())
            if crc:
                out.part_crc32.append(part_crc)
            if got < part_size:
                break
    out.sha256 = sha.hexdigest()
    out.crc32 = full_crc if crc else None
    return out
