"""A cache of archive files on the host, keyed by URL, shared by xdist workers and sessions.

Each URL has a data file and a record of when it was fetched and its sha256, written whole
(core.files) under a per-URL file lock: concurrent sessions fetch a URL once, and a reader never
sees half a file. An entry older than `max_age` (InRelease) or rejected by the caller's check
(an index whose hash no longer matches) is fetched again; a damaged entry too.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from core.files import read_json, write_atomic, write_json_atomic

LOCK_TIMEOUT_S = 600  # another worker may be downloading a large index


@dataclass(frozen=True)
class Cached:
    url: str
    data: bytes
    fetched_at: float  # seconds since the epoch
    fresh: bool  # fetched by this call


class UrlCache:
    def __init__(
        self,
        root: Path,
        fetch: Callable[[str], bytes],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.fetch = fetch
        self.clock = clock

    def _paths(self, url: str) -> tuple[Path, Path, Path]:
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        return self.root / f"{key}.data", self.root / f"{key}.json", self.root / f"{key}.lock"

    def _load(self, url: str) -> Cached | None:
        data_path, meta_path, _ = self._paths(url)
        meta = read_json(meta_path)
        if not isinstance(meta, dict) or meta.get("url") != url or not data_path.is_file():
            return None
        data = data_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            return None
        return Cached(url, data, float(meta.get("fetched_at", 0)), fresh=False)

    def get(
        self,
        url: str,
        max_age: float | None = None,
        accept: Callable[[bytes], bool] = lambda _data: True,
        fetch: Callable[[str], bytes] | None = None,
    ) -> Cached:
        """`url`'s body: from the cache when younger than `max_age` seconds (None: any age) and
        accepted by `accept`, else fetched now (or made by `fetch`: a key for derived data,
        such as an index decompressed) and stored."""
        data_path, meta_path, lock_path = self._paths(url)
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_path), timeout=LOCK_TIMEOUT_S):
            hit = self._load(url)
            young = hit is not None and (
                max_age is None or self.clock() - hit.fetched_at <= max_age
            )
            if hit is not None and young and accept(hit.data):
                return hit
            data = (fetch or self.fetch)(url)
            now = self.clock()
            write_atomic(data_path, data)
            write_json_atomic(
                meta_path,
                {"url": url, "fetched_at": now, "sha256": hashlib.sha256(data).hexdigest(),
                 "size": len(data)},
            )  # fmt: skip
            return Cached(url, data, now, fresh=True)
