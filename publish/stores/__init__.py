"""Destinations: `s3://bucket/prefix` (S3 or compatible) or a local folder (the default)."""

from __future__ import annotations

from pathlib import Path

from core.errors import UsageError
from core.settings import S3Config
from publish.stores.base import IntegrityError, ObjectInfo, Store
from publish.stores.local import LocalStore

__all__ = ["IntegrityError", "ObjectInfo", "Store", "open_store"]


def open_store(to: str, s3: S3Config) -> Store:
    to = (to or "").strip()
    if not to:
        raise UsageError("no publish destination: pass --to s3://bucket/prefix or a folder")
    if to.startswith("s3://"):
        from publish.stores.s3 import S3Store

        return S3Store(to, s3)
    if "://" in to and not to.startswith("file://"):
        raise UsageError(
            f"{to!r}: unsupported destination scheme; use s3://bucket/prefix or a local folder"
        )
    return LocalStore(Path(to.removeprefix("file://")), url=to)
