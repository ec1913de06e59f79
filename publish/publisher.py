"""Publishing one gated OS build: artifact, log, JUnit, metadata, then latest.json, then index.

Order matters: a reader that follows `index.json` or `latest.json` must only ever reach
objects that are complete and verified, so the pointers are written last, and a build
folder is complete only once its `metadata.json` (written after everything else) exists.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InfrastructureError
from core.ownership import scratch
from core.redact import Redactor
from publish.artifact import ArtifactPlan, ArtifactStream, plan_artifact
from publish.buildid import commit_time, make_build_id, order_key
from publish.gating import Candidate
from publish.metadata import build_metadata, validate_metadata
from publish.pointers import latest_doc, update_latest
from publish.stores.base import IntegrityError, Log, Progress, Store
from publish.upload_digests import DigestingReader, FileDigests, file_blocks, part_layout
from publish.vhd_artifact import VhdPlan, VhdStream, disk_boot_modes, plan_vhd, raw_disk

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
    metadata: dict[str, Any] = field(default_factory=dict)  # the build's metadata.json


@dataclass
class Planned:
    candidate: Candidate
    artifact: ArtifactPlan
    build_id: str
    folder: str
    order: list[float]
    commit_time: float | None
    notes: list[str] = field(default_factory=list)
    vhd: VhdPlan | None = None


def plan(c: Candidate, compression: str, vhd: str = "none") -> Planned:
    """Where the build goes and how its XVA is made; reads no more than the disk's layout."""
    git = c.results.data["git"]
    built_at = float(c.build["built_at"])
    build_id = make_build_id(built_at, git["revision"], git["dirty"])
    ctime = commit_time(git)
    return Planned(
        candidate=c,
        artifact=plan_artifact(c, build_id, compression),
        build_id=build_id,
        folder=f"{c.os_name}/{c.record['version']}/{build_id}",
        order=order_key(ctime, built_at),
        commit_time=ctime,
        vhd=plan_vhd(c, vhd),
    )


def upload(
    store: Store,
    key: str,
    blocks: Iterable[bytes],
    log: Log,
    *,
    size_hint: int,
    sha256: str | None = None,
    on_end: Callable[[FileDigests], None] | None = None,
) -> FileDigests:
    """Stream `blocks` into `key`, every digest computed in that one read pass."""
    _, part_size = part_layout(size_hint, store.threshold, store.chunksize)
    reader = DigestingReader(
        blocks,
        part_size=max(part_size, store.threshold),
        threshold=store.threshold,
        on_end=on_end,
        progress=Progress(key.rsplit("/", 1)[-1], size_hint, log),
    )
    try:
        return store.put_stream(key, reader, sha256=sha256, log=log)
    finally:
        reader.close()


def publish_one(
    p: Planned, store: Store, redactor: Redactor, log: Log, *, pointers: bool = True
) -> Published:
    """The build folder (artifact, log, JUnit, then metadata.json), then `latest.json` unless
    `pointers` is off (a fan-out shard: the index job moves every pointer)."""
    c, art = p.candidate, p.artifact
    art_key = f"{p.folder}/{art.name}"
    meta_key = f"{p.folder}/{METADATA}"
    existing = store.get_bytes(meta_key)
    if existing is not None:
        reused = True
        meta = _reuse(p, store, existing, log)
        log(f"{c.os_name}: {p.build_id} already published; verified, not uploaded again")
    else:
        reused = False
        how = (
            "as built"
            if art.as_built
            else "from the uncompressed XVA"
            if art.source_format == "xva"
            else f"from the {art.source_format} disk"
        )
        log(
            f"{c.os_name}: uploading {art.name} ({art.compression}, {how}) to "
            f"{store.describe(art_key)}"
        )
        stream = ArtifactStream(art, description=_description(p))
        digests = upload(
            store,
            art_key,
            stream.blocks(),
            log,
            size_hint=art.size_hint,
            sha256=art.source_sha256 if art.as_built else None,
            on_end=stream.check(),
        )
        files = _upload_texts(p, store, redactor, log)
        vhd, modes = _upload_vhd(p, store, log) if p.vhd else (None, None)
        if modes is None and art.source_format != "xva":  # read from the raw disk's GPT
            modes = disk_boot_modes(art.source)
        meta = build_metadata(
            c,
            build_id=p.build_id,
            artifact={
                "name": art.name,
                "format": "xva",
                "compression": art.compression,
                "size": digests.size,
                "sha256": digests.sha256,
            },
            source=art.describe(),
            files=files,
            commit_time=p.commit_time,
            order=p.order,
            published_at=time.time(),
            vhd=vhd,
            boot_modes=modes,
        )
        body = redactor.data(json.dumps(meta, indent=2, sort_keys=True).encode() + b"\n")
        store.put_bytes(meta_key, body, "application/json")
        log(
            f"{c.os_name}: {store.describe(p.folder)}/ complete and verified "
            f"({art.name}: {digests.size} bytes, sha256 {digests.sha256})"
        )
    if pointers:
        changed, message = update_latest(store, latest_doc(meta, p.folder, METADATA))
    else:
        changed, message = False, "latest.json left to `xcpng-golden store index`"
    log(f"{c.os_name}: {message}")
    return Published(
        c.os_name, p.build_id, p.folder, store.describe(art_key), reused, changed, message, meta
    )


def _upload_vhd(
    p: Planned, store: Store, log: Log
) -> tuple[dict[str, Any] | None, list[str] | None]:
    """The VHD beside the XVA, uploaded and verified; its metadata block and the boot modes."""
    assert p.vhd is not None
    c, art = p.candidate, p.artifact
    key = f"{p.folder}/{p.vhd.name}"
    with raw_disk(c, art.source_format) as raw:
        expected = art.source_sha256 if art.source_format != "xva" else None
        stream = VhdStream(p.vhd, raw, expected)
        log(f"{c.os_name}: uploading {p.vhd.name} ({p.vhd.compression}) to {store.describe(key)}")
        digests = upload(
            store,
            key,
            stream.blocks(),
            log,
            size_hint=stream.size_hint(),
            on_end=stream.check(),
        )
        modes = disk_boot_modes(raw)
    log(f"{c.os_name}: {p.vhd.name}: {digests.size} bytes, sha256 {digests.sha256}")
    return p.vhd.describe(digests, stream.disk_size), modes


def _description(p: Planned) -> str:
    c = p.candidate
    git = c.results.data["git"]
    return (
        f"{c.os_name} {c.record['version']} golden template, build {p.build_id}, "
        f"git {git.get('revision') or 'unknown'}, checked on {c.platform}"
    )


def _reuse(p: Planned, store: Store, existing: bytes, log: Log = print) -> dict[str, Any]:
    """Same build id again: the published build must hold this very disk, and be intact. A VHD
    asked for now and not published then is added (metadata.json rewritten last)."""
    try:
        meta: dict[str, Any] = json.loads(existing)
    except ValueError:
        raise IntegrityError(f"{store.describe(p.folder)}/{METADATA} is not valid JSON") from None
    art = meta.get("artifact", {})
    source = meta.get("source") or art  # metadata v1 published the artifact as it was
    if source.get("sha256") != p.artifact.source_sha256:
        raise IntegrityError(
            f"{store.describe(p.folder)} already holds build {p.build_id} with a different "
            "artifact; refusing to overwrite a published build (rebuild to get a new build id)"
        )
    store.check_object(f"{p.folder}/{art['name']}", int(art["size"]), str(art["sha256"]))
    for name, info in meta.get("files", {}).items():
        head = store.head(f"{p.folder}/{name}")
        if head is None or head.size != info["size"]:
            raise IntegrityError(f"{store.describe(p.folder)}/{name} is missing or truncated")
    if "vhd" in meta:
        vhd = meta["vhd"]
        store.check_object(f"{p.folder}/{vhd['name']}", int(vhd["size"]), str(vhd["sha256"]))
    elif p.vhd is not None:
        meta["vhd"], meta["boot_modes"] = _upload_vhd(p, store, log)
        validate_metadata(meta)
        body = json.dumps(meta, indent=2, sort_keys=True).encode() + b"\n"
        store.put_bytes(f"{p.folder}/{METADATA}", body, "application/json")
    return meta


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
            d = upload(
                store,
                f"{p.folder}/{name}",
                file_blocks(clean),
                lambda _msg: None,
                size_hint=clean.stat().st_size,
            )
            files[name] = {"size": d.size, "sha256": d.sha256}
    return files
