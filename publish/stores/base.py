"""What the publisher needs from a store; keys are relative to the destination prefix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from publish.upload_digests import DigestingReader, FileDigests

Log = Callable[[str], None]


class Progress:
    """Logs an upload's progress about every 10 % of its expected size."""

    def __init__(self, name: str, size_hint: int, log: Log):
        self.name, self.log = name, log
        self.step = max(size_hint // 10, 1)
        self.done = 0

    def __call__(self, n: int) -> None:
        before, self.done = self.done, self.done + n
        if before // self.step != self.done // self.step:
            self.log(f"  {self.name}: {self.done >> 20} MiB")


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
    wants_crc: bool

    def describe(self, key: str) -> str: ...

    def put_stream(
        self, key: str, stream: DigestingReader, sha256: str | None = None, log: Log = print
    ) -> FileDigests:
        """Upload everything `stream` yields (read once, digested as it is read) and verify
        that it landed intact; raise on any doubt. `sha256`, when known up front, is recorded
        with the object."""

    def check_object(self, key: str, size: int, sha256: str) -> None:
        """Raise IntegrityError unless the object exists with this size (and this sha256,
        where the store recorded one); cheap, no read of the object."""

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
