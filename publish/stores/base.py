"""What the publisher needs from a store; keys are relative to the destination prefix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from publish.digests import FileDigests

Log = Callable[[str], None]


class IntegrityError(Exception):
    """An object in the store does not match what was uploaded."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    token: str  # ETag (S3) or a content digest (folder): the compare-and-set token
    sha256: str | None = None  # as recorded at upload (x-amz-meta-sha256), if any


class Reader(Protocol):
    """An object's bytes as a stream (`read(n)` returns b"" at the end)."""

    def read(self, n: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class Store(Protocol):
    url: str  # the destination as the user wrote it, for messages
    threshold: int  # multipart threshold and part size, for digest_file
    chunksize: int
    wants_md5: bool
    wants_crc: bool

    def describe(self, key: str) -> str: ...

    def put_file(self, key: str, path: Path, digests: FileDigests, log: Log) -> None:
        """Upload a file and verify it landed intact; raise on any doubt."""

    def verify_file(self, key: str, digests: FileDigests) -> None:
        """Raise IntegrityError unless the stored object matches the digests."""

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Write a small object and read it back."""

    def get_bytes(self, key: str) -> bytes | None: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def get_with_token(self, key: str) -> tuple[bytes, str] | None: ...

    def put_if(self, key: str, data: bytes, token: str | None) -> bool:
        """Write only if the object is unchanged (token) or absent (None); False if it moved."""

    def list_keys(self, prefix: str) -> list[ObjectInfo]: ...

    def list_dirs(self, prefix: str) -> list[str]:
        """Immediate sub-folders of prefix ('' is the root), names only."""

    def delete(self, keys: list[str]) -> None: ...

    def last_modified(self, key: str) -> float | None: ...

    def sha256(self, key: str) -> str | None:
        """sha256 of the stored object, streamed; None if absent."""

    def probe(self) -> list[str]:
        """Write and delete a probe object; one-line problems, [] if fine."""

    def open_read(self, key: str, offset: int = 0, token: str | None = None) -> Reader:
        """Stream the object from byte `offset` (S3: a ranged GET; folder: a seek). With
        `token` (from `head`), raise IntegrityError if the object changed since: a resumed
        download never splices two versions."""

    def presign(self, key: str, expires_s: int) -> str:
        """A link that reads the object without credentials until it expires (a folder's
        objects: their file:// URL)."""
