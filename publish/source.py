"""The reader's side of the store: which builds an OS has, and one build's objects.

Used by `xcpng-golden store fetch`, the catalog page, and `xcpng-golden pool import`.
A build is found the way the publisher wrote it: `<os>/latest.json` (the newest complete
build) or `<os>/<version>/<build-id>/` with its `metadata.json` (written last: a folder
without it is incomplete). Every metadata.json is checked against its schema before anything
trusts it. A missing OS or build is a UsageError naming what exists; a store that contradicts
itself is an IntegrityError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.destination import Destination
from core.errors import UsageError
from core.settings import S3Config
from publish.buildid import is_build_id
from publish.metadata import MetadataError, validate_metadata
from publish.pointers import latest_key
from publish.publisher import METADATA
from publish.stores import open_store
from publish.stores.base import IntegrityError, Reader, Store

FILE_METADATA_SUFFIX = ".metadata.json"  # what fetch writes beside an artifact


@dataclass(frozen=True)
class Build:
    """One published build: its metadata and where its objects are."""

    meta: dict[str, Any]
    store: Store | None  # None: a local artifact file (fetched earlier)
    folder: str  # store key of the build folder ("" for a file)
    path: Path | None = None  # the artifact file, when store is None
    raw: bytes | None = None  # metadata.json as stored (SHA256SUMS lists these very bytes)

    @property
    def os_name(self) -> str:
        return str(self.meta["os"]["name"])

    @property
    def build_id(self) -> str:
        return str(self.meta["build_id"])

    @property
    def name(self) -> str:
        return str(self.meta["artifact"]["name"])

    @property
    def size(self) -> int:
        return int(self.meta["artifact"]["size"])

    @property
    def sha256(self) -> str:
        return str(self.meta["artifact"]["sha256"])

    @property
    def format(self) -> str | None:
        fmt = self.meta["artifact"].get("format")
        return str(fmt) if fmt else None

    @property
    def git_revision(self) -> str | None:
        rev = self.meta["git"].get("revision")
        return str(rev) if rev else None

    def key(self, name: str) -> str:
        return f"{self.folder}/{name}"

    @property
    def artifact_key(self) -> str:
        return self.key(self.name)

    @property
    def location(self) -> str:
        """Where the artifact is, for messages and records (never a presigned URL)."""
        if self.store is None:
            return str(self.path)
        return self.store.describe(self.artifact_key)

    def token(self) -> str | None:
        """The artifact's version token now (ETag / size-mtime), to pin a resumed read."""
        if self.store is None:
            return None
        head = self.store.head(self.artifact_key)
        if head is None:
            raise IntegrityError(f"{self.location} is missing although its metadata exists")
        if head.size != self.size:
            raise IntegrityError(
                f"{self.location} is {head.size} bytes, its metadata says {self.size}: "
                "the stored object is damaged (xcpng-golden store verify --deep)"
            )
        return head.token

    def open(self, offset: int = 0, token: str | None = None) -> Reader:
        """The artifact's bytes from `offset`, streamed (never copied locally first)."""
        if self.store is None:
            assert self.path is not None
            fh = self.path.open("rb")
            fh.seek(offset)
            return fh
        return self.store.open_read(self.artifact_key, offset, token)


def parse_metadata(raw: bytes, where: str) -> dict[str, Any]:
    """metadata.json checked against its schema; IntegrityError naming where it breaks."""
    try:
        meta = json.loads(raw)
    except ValueError as e:
        raise IntegrityError(f"{where} is not JSON ({e})") from None
    try:
        validate_metadata(meta)
    except MetadataError as e:
        raise IntegrityError(
            f"{where} does not match the metadata schema at {e.where}: {e.message}"
        ) from None
    return dict(meta)


def published_oses(store: Store) -> list[str]:
    """OS names that have a latest.json."""
    return [o for o in store.list_dirs("") if store.head(latest_key(o)) is not None]


def build_folders(store: Store, os_name: str) -> list[tuple[str, str]]:
    """(build id, folder) of every complete build of the OS, newest first."""
    found = []
    for version in store.list_dirs(os_name):
        for build_id in store.list_dirs(f"{os_name}/{version}"):
            folder = f"{os_name}/{version}/{build_id}"
            if is_build_id(build_id) and store.head(f"{folder}/{METADATA}") is not None:
                found.append((build_id, folder))
    return sorted(found, reverse=True)


def load_build(store: Store, folder: str) -> Build:
    where = store.describe(f"{folder}/{METADATA}")
    raw = store.get_bytes(f"{folder}/{METADATA}")
    if raw is None:
        raise IntegrityError(f"{where} disappeared")
    meta = parse_metadata(raw, where)
    if meta["build_id"] != folder.rsplit("/", 1)[-1]:
        raise IntegrityError(f"{where} is about build {meta['build_id']}, not its own folder's")
    return Build(meta=meta, store=store, folder=folder, raw=raw)


def find_build(store: Store, os_name: str, build_id: str | None = None) -> Build:
    """The latest build of `os_name`, or the one named; UsageError naming what exists."""
    oses = published_oses(store)
    if os_name not in oses:
        have = ", ".join(oses) or "none"
        raise UsageError(f"no OS named {os_name!r} at {store.url} (published: {have})")
    if build_id is None:
        raw = store.get_bytes(latest_key(os_name))
        try:
            doc = json.loads(raw or b"")
            folder = str(doc["folder"])
        except (ValueError, KeyError, TypeError):
            where = store.describe(latest_key(os_name))
            raise IntegrityError(f"{where} is not a valid latest.json") from None
        build = load_build(store, folder)
    else:
        folders = dict(build_folders(store, os_name))
        if build_id not in folders:
            have = ", ".join(folders) or "none"
            raise UsageError(
                f"no complete build {build_id!r} of {os_name} at {store.url} "
                f"(builds, newest first: {have})"
            )
        build = load_build(store, folders[build_id])
    if build.os_name != os_name:
        where = store.describe(build.key(METADATA))
        raise IntegrityError(f"{where} describes {build.os_name}, not {os_name}")
    return build


def file_build(path: Path, os_name: str | None, metadata: Path | None = None) -> Build:
    """A local artifact with its metadata beside it (as fetch writes them) or named."""
    meta_path = metadata or path.with_name(path.name + FILE_METADATA_SUFFIX)
    try:
        raw = meta_path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"no metadata for {path}: expected {meta_path} (xcpng-golden store fetch writes it); "
            "pass --metadata PATH"
        ) from None
    meta = parse_metadata(raw, str(meta_path))
    if os_name is not None and meta["os"]["name"] != os_name:
        raise UsageError(f"{path} is a build of {meta['os']['name']}, not {os_name}")
    size = path.stat().st_size
    if size != meta["artifact"]["size"]:
        raise IntegrityError(
            f"{path} is {size} bytes, its metadata says {meta['artifact']['size']}: fetch it again"
        )
    return Build(meta=meta, store=None, folder="", path=path, raw=raw)


def open_source(source: str, s3: S3Config) -> Store | Path:
    """`s3://bucket/prefix` or a folder (a store), or a file (an artifact fetched earlier)."""
    dest = Destination.parse(source, "--from")
    if dest.path is not None and dest.path.is_file():
        return dest.path
    if dest.path is not None and not dest.path.is_dir():
        raise UsageError(f"{source}: no such folder or file; pass s3://bucket/prefix or a path")
    return open_store(dest, s3)


def resolve(
    source: str,
    s3: S3Config,
    os_name: str | None,
    build_id: str | None = None,
    metadata: Path | None = None,
) -> Build:
    """The build `--from SOURCE --os NAME [--build ID]` means."""
    where = open_source(source, s3)
    if isinstance(where, Path):
        build = file_build(where, os_name, metadata)
        if build_id is not None and build.build_id != build_id:
            raise UsageError(f"{where} is build {build.build_id}, not {build_id}")
        return build
    if not os_name:
        raise UsageError(f"--os is required with a store ({source})")
    return find_build(where, os_name, build_id)
