"""Where templates are published (or read from): a local folder or an S3 prefix, parsed once.

`s3://bucket/prefix` is an S3 (or S3-compatible) store; `file:///abs/path` and any plain path
are a folder, the same folder whoever asks (the store, the leftover sweep, the gate). Anything
else with a scheme is refused with one usage error naming the setting and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import UsageError

FIX = "write s3://bucket/prefix or a folder (a path, or file:///absolute/path)"
BUCKET_RULE = "bucket: 3-63 lower-case characters"


@dataclass(frozen=True)
class Destination:
    """A parsed destination: `url` as given (for messages and records), and its parts."""

    url: str
    kind: Literal["folder", "s3"]
    bucket: str | None = None  # s3 only
    prefix: str = ""  # s3 only: the key prefix, without leading or trailing slashes
    path: Path | None = None  # folder only: absolute

    @property
    def is_s3(self) -> bool:
        return self.kind == "s3"

    def __str__(self) -> str:
        return self.url

    @classmethod
    def parse(cls, text: str, where: str = "destination") -> Destination:
        """The destination `text` means; `where` names the setting in the error (e.g. --to)."""
        url = (text or "").strip()
        if not url:
            raise UsageError(f"{where} is empty: {FIX}")
        if url.startswith("s3://"):
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            if not (3 <= len(bucket) <= 63) or bucket != bucket.lower():
                raise UsageError(
                    f"{where}={url!r} is not a valid S3 destination: write s3://bucket/prefix "
                    f"({BUCKET_RULE})"
                )
            return cls(url=url, kind="s3", bucket=bucket, prefix=prefix.strip("/"))
        folder = url
        if url.startswith("file://"):
            folder = url.removeprefix("file://")
            if not folder.startswith("/"):
                raise UsageError(f"{where}={url!r}: a file URL needs an absolute path; {FIX}")
        elif "://" in url:
            raise UsageError(f"{where}={url!r}: unsupported destination scheme; {FIX}")
        return cls(url=url, kind="folder", path=Path(os.path.expanduser(folder)).absolute())


def as_destination(value: Destination | str, where: str = "destination") -> Destination:
    """A Destination as is, a string parsed (entry points that scripts and tests call)."""
    return value if isinstance(value, Destination) else Destination.parse(value, where)
