"""Destinations: `s3://bucket/prefix` (S3 or compatible) or a local folder (the default)."""

from __future__ import annotations

from core.destination import Destination, as_destination
from core.settings import S3Config
from publish.stores.base import IntegrityError, ObjectInfo, Store
from publish.stores.local import LocalStore

__all__ = ["IntegrityError", "ObjectInfo", "Store", "open_store"]


def open_store(to: Destination | str, s3: S3Config) -> Store:
    """The store at `to` (a string is parsed as the --to option would be)."""
    dest = as_destination(to, "--to")
    if dest.is_s3:
        from publish.stores.s3 import S3Store

        return S3Store(dest, s3)
    assert dest.path is not None
    return LocalStore(dest.path, url=dest.url)
