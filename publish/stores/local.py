"""A local folder as the store: the embedded default, atomic by temp file plus rename.

Files are written sparse: an all-zero filesystem block is seeked over, never written, so a
published disk costs its data, not its virtual size (`du` shows it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from filelock import FileLock

from core.files import BLOCK, SparseWriter, atomic_writer, sha256_file
from publish.stores.base import IntegrityError, Log, ObjectInfo, Reader
from publish.upload_digests import DigestingReader, FileDigests

LOCK_NAME = ".publish.lock"


class LocalStore:
    wants_crc = False

    def __init__(self, root: Path, url: str | None = None):
        self.root = root.expanduser().absolute()
        self.url = url or str(self.root)
        self.threshold = 1 << 62  # never "multipart": the layout only matters for S3
        self.chunksize = 8 << 20

    def _path(self, key: str) -> Path:
        p = (self.root / key).absolute()
        if self.root not in p.parents and p != self.root:
            raise ValueError(f"key {key!r} escapes {self.root}")
        return p

    def describe(self, key: str) -> str:
        return str(self._path(key))

    def _write_atomic(self, dst: Path, writer: Callable[[IO[bytes]], object]) -> None:
        with atomic_writer(dst, fsync=True) as f:
            writer(f)

    def put_stream(
        self, key: str, stream: DigestingReader, sha256: str | None = None, log: Log = print
    ) -> FileDigests:
        dst = self._path(key)

        def copy(f: IO[bytes]) -> None:
            with SparseWriter(f) as out:
                while block := stream.read(BLOCK):
                    out.write(block)

        self._write_atomic(dst, copy)
        digests = stream.digests
        if dst.stat().st_size != digests.size:
            raise IntegrityError(f"{dst} is {dst.stat().st_size} bytes, wrote {digests.size}")
        return digests

    def check_object(self, key: str, size: int, sha256: str) -> None:
        dst = self._path(key)
        if not dst.is_file() or dst.stat().st_size != size:
            raise IntegrityError(f"{dst} is missing or has the wrong size")

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._write_atomic(self._path(key), lambda f: f.write(data))
        if self.get_bytes(key) != data:
            raise IntegrityError(f"{self._path(key)} reads back different from what was written")

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def head(self, key: str) -> ObjectInfo | None:
        p = self._path(key)
        if not p.is_file():
            return None
        st = p.stat()
        return ObjectInfo(key=key, size=st.st_size, token=f"{st.st_size}-{st.st_mtime_ns}")

    def get_with_token(self, key: str) -> tuple[bytes, str] | None:
        data = self.get_bytes(key)
        return None if data is None else (data, hashlib.sha256(data).hexdigest())

    def put_if(self, key: str, data: bytes, token: str | None) -> bool:
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / LOCK_NAME), timeout=60):
            current = self.get_with_token(key)
            if (current[1] if current else None) != token:
                return False
            self._write_atomic(self._path(key), lambda f: f.write(data))
            return True

    def list_keys(self, prefix: str) -> list[ObjectInfo]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        out = []
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                key = p.relative_to(self.root).as_posix()
                out.append(ObjectInfo(key=key, size=p.stat().st_size, token=""))
        return out

    def list_dirs(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            p = self._path(key)
            p.unlink(missing_ok=True)
            parent = p.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def last_modified(self, key: str) -> float | None:
        p = self._path(key)
        return p.stat().st_mtime if p.exists() else None

    def sha256(self, key: str) -> str | None:
        p = self._path(key)
        return sha256_file(p) if p.is_file() else None

    def probe(self) -> list[str]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"probe")
            probe.unlink()
        except OSError as e:
            return [f"publish folder {self.root} is not writable ({e.strerror}); fix --publish-to"]
        free = shutil.disk_usage(self.root).free
        if free < 64 << 20:
            return [f"publish folder {self.root} has only {free >> 20} MiB free"]
        return []

    def open_read(self, key: str, offset: int = 0, token: str | None = None) -> Reader:
        p = self._path(key)
        try:
            fh = p.open("rb")
        except FileNotFoundError:
            raise IntegrityError(f"{p} disappeared while it was being read") from None
        st = os.fstat(fh.fileno())
        if token is not None and token != f"{st.st_size}-{st.st_mtime_ns}":
            fh.close()
            raise IntegrityError(f"{p} changed since it was first read")
        fh.seek(offset)
        return fh

    def presign(self, key: str, expires_s: int) -> str:
        return self._path(key).as_uri()
