"""Reading an S3 object as a stream that survives a broken connection.

A download of several GiB over one GET fails now and then mid-body (reset, read timeout,
truncated body); botocore retries a request, not a body already being read. The reader opens
the object with a ranged GET pinned to its ETag (`If-Match`), and when the body breaks it opens
it again from the byte it had reached, a bounded number of times, so a caller sees one
uninterrupted stream or one clear error, never two versions of the object spliced together.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from core.errors import InfrastructureError
from publish.stores.base import IntegrityError
from publish.stores.s3errors import code_of

Call = Callable[[str, Callable[[], Any]], Any]  # S3Store._call: retries, one-line errors

log = logging.getLogger("publish")
RESUMES = 5  # body breaks survived per reader before giving up
# what a body that stops mid-way raises (urllib3 errors wrapped by botocore)
BROKEN_BODY = (HTTPClientError, BotoConnectionError, IncompleteReadError, OSError)


class S3Reader:
    """`read(n)` over `GET key` from `offset`, re-opened where it broke (see module doc)."""

    def __init__(
        self,
        client: Any,
        where: tuple[str, str, str],
        call: Call,
        offset: int = 0,
        token: str | None = None,
    ):
        """`where`: bucket, full key, and the object as messages name it."""
        self.client, self.call = client, call
        self.bucket, self.full_key, self.where = where
        self.pos, self.etag = offset, token
        self.resumes = 0
        self.body: Any = None
        self._open()

    def _open(self) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.full_key}
        if self.pos:
            args["Range"] = f"bytes={self.pos}-"
        if self.etag:
            args["IfMatch"] = self.etag
        where = self.where

        def get() -> Any:
            try:
                return self.client.get_object(**args)
            except ClientError as e:
                code = code_of(e)
                if code in ("InvalidRange", "416"):
                    return None  # offset at the end: nothing left to read
                if code in ("PreconditionFailed", "412"):
                    raise IntegrityError(f"{where} changed since it was first read") from None
                if code in ("NoSuchKey", "404"):
                    raise IntegrityError(f"{where} disappeared while it was being read") from None
                raise

        r = self.call(f"reading {where}", get)
        self.body = r["Body"] if r is not None else None
        if r is not None and self.etag is None:
            self.etag = str(r["ETag"])  # later re-opens must find this very version

    def read(self, n: int = -1, /) -> bytes:
        while True:
            if self.body is None:
                return b""
            try:
                data: bytes = self.body.read(None if n < 0 else n)
            except BROKEN_BODY as e:
                self._resume(e)
                continue
            self.pos += len(data)
            return data

    def _resume(self, err: BaseException) -> None:
        self.resumes += 1
        if self.resumes > RESUMES:
            raise InfrastructureError(
                f"reading {self.where} broke {self.resumes} times (last: {type(err).__name__}: "
                f"{err}) at byte {self.pos}; check the network and the store"
            ) from None
        log.warning("%s: the download broke at byte %d (%s); resuming", self.where, self.pos, err)
        self.close()
        self._open()

    def close(self) -> None:
        if self.body is not None:
            with contextlib.suppress(BotoCoreError, OSError):  # a broken body: nothing to free
                self.body.close()
            self.body = None

    def __enter__(self) -> S3Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
