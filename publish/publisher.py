"""Publishing one gated OS build: artifact, log, JUnit, metadata, then latest.json, then index.

Order matters: a reader that follows `index.json` or `latest.json` must only ever reach
objects that are complete and verified, so the pointers are written last, and a build
folder is complete only once its `metadata.json` (written after everything else) exists.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InfrastructureError
from core.leftovers import scratch
from core.redact import Redactor
from publish.buildid import commit_time, make_build_id, order_key
from publish.digests import FileDigests, digest_file
from publish.gating import Candidate
from publish.metadata import build_metadata
from publish.pointers import LATEST_SCHEMA, update_latest
from publish.stores.base import IntegrityError, Log, Store

METADATA = "metadata.json"
BUILD_LOG = "build.log"
JUNIT = "junit.xml"


@dataclass
class Published:
    os_name: str
    build_id: str
    folder: str
    artifact: str  # URL of the artifact object
    reused: bool  # already there from an earlier run: verified, not uploaded again
    latest_changed: bool
    latest_message: str


@dataclass
class Planned:
    candidate: Candidate
    digests: FileDigests
    build_id: str
    folder: str
    order: list[float]
    commit_time: float | None
    notes: list[str] = field(default_factory=list)


def plan(c: Candidate, store: Store) -> Planned:
    """Hash the artifact once (sha256 re-check plus the digests the store will report)."""
    digests = digest_file(
        c.artifact, store.threshold, store.chunksize, store.wants_md5, store.wants_crc
    )
    git = c.results.data["git"]
    built_at = float(c.build["built_at"])
    build_id = make_build_id(built_at, git["revision"], git["dirty"])
    ctime = commit_time(git)
    return Planned(
        candidate=c,
        digests=digests,
        build_id=build_id,
        folder=f"{c.os_name}/{c.record['version']}/{build_id}",
        order=order_key(ctime, built_at),
        commit_time=ctime,
    )


def publish_one(p: Planned, store: Store, redactor: Redactor, log: Log) -> Published:
    c = p.candidate
    art_name = c.artifact.name
    art_key = f"{p.folder}/{art_name}"
    meta_key = f"{p.folder}/{METADATA}"
    existing = store.get_bytes(meta_key)
    if existing is not None:
        reused = _reuse(p, store, existing, art_name)
        meta = json.loads(existing)
        log(f"{c.os_name}: {p.build_id} already published; verified, not uploaded again")
    else:
        reused = False
        log(f"{c.os_name}: uploading {art_name} ({p.digests.size} B) to {store.describe(art_key)}")
        store.put_file(art_key, c.artifact, p.digests, log)
        files = _upload_texts(p, store, redactor, log)
        meta = build_metadata(
            c,
            build_id=p.build_id,
            artifact_name=art_name,
            files=files,
            commit_time=p.commit_time,
            order=p.order,
            published_at=time.time(),
        )
        body = redactor.data(json.dumps(meta, indent=2, sort_keys=True).encode() + b"\n")
        store.put_bytes(meta_key, body, "application/json")
        log(f"{c.os_name}: {store.describe(p.folder)}/ complete and verified")
    latest = {
        "schema": LATEST_SCHEMA,
        "os": c.os_name,
        "family": c.record["family"],
        "version": c.record["version"],
        "build_id": p.build_id,
        "folder": p.folder,
        "metadata": meta_key,
        "artifact": art_key,
        "size": p.digests.size,
        "sha256": p.digests.sha256,
        "order": p.order,
        "platform": meta["validation"]["platform"],
        "published_at": meta["published_at"],
    }
    changed, message = update_latest(store, latest)
    log(f"{c.os_name}: {message}")
    return Published(
        c.os_name, p.build_id, p.folder, store.describe(art_key), reused, changed, message
    )


def _reuse(p: Planned, store: Store, existing: bytes, art_name: str) -> bool:
    """Same build id again: the published artifact must be this one, and intact."""
    try:
        meta: dict[str, Any] = json.loads(existing)
    except ValueError:
        raise IntegrityError(f"{store.describe(p.folder)}/{METADATA} is not valid JSON") from None
    if meta.get("artifact", {}).get("sha256") != p.digests.sha256:
        raise IntegrityError(
            f"{store.describe(p.folder)} already holds build {p.build_id} with a different "
            "artifact; refusing to overwrite a published build (rebuild to get a new build id)"
        )
    store.verify_file(f"{p.folder}/{art_name}", p.digests)
    for name, info in meta.get("files", {}).items():
        head = store.head(f"{p.folder}/{name}")
        if head is None or head.size != info["size"]:
            raise IntegrityError(f"{store.describe(p.folder)}/{name} is missing or truncated")
    return True


def _upload_texts(p: Planned, store: Store, redactor: Redactor, log: Log) -> dict[str, Any]:
    """build.log and junit.xml, redacted into a temp folder, uploaded and verified."""
    files: dict[str, Any] = {}
    sources = {BUILD_LOG: p.candidate.log, JUNIT: p.candidate.junit}
    with scratch("xcpng-publish") as tmp:
        for name, src in sources.items():
            if src is None or not src.is_file():
                log(f"{p.candidate.os_name}: no {name} to upload ({src or 'not recorded'})")
                continue
            clean = Path(tmp) / name
            try:
                redactor.file(src, clean)
            except OSError as e:
                raise InfrastructureError(f"cannot read {src}: {e.strerror}") from None
            d = digest_file(
                clean, store.threshold, store.chunksize, store.wants_md5, store.wants_crc
            )
            store.put_file(f"{p.folder}/{name}", clean, d, lambda _msg: None)
            files[name] = {"size": d.size, "sha256": d.sha256}
    return files
