"""Publishing one gated OS build: artifact, log, JUnit, SBOM, provenance (and its signature),
SHA256SUMS (and its signature), metadata, then latest.json, then index.

Order matters: a reader that follows `index.json` or `latest.json` must only ever reach
objects that are complete and verified, so the pointers are written last, and a build
folder is complete only once its `metadata.json` (written after everything else) exists. A
build whose SBOM, provenance or signature failed to upload never gets its metadata.json, so
it is not complete, `latest.json` never points at it, and `store prune` removes it later.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import __version__
from core.errors import InfrastructureError
from core.ownership import scratch
from core.redact import Redactor
from pkgdb.inventory import Inventory
from publish.artifact import ArtifactPlan, ArtifactStream, plan_artifact
from publish.buildid import commit_time, make_build_id, order_key
from publish.gating import Candidate
from publish.metadata import (
    build_metadata,
    folder_objects,
    is_signed,
    listed_digests,
    validate_metadata,
)
from publish.pointers import latest_doc, update_latest
from publish.provenance import PREDICATE_TYPE, statement
from publish.provenance import encode as encode_statement
from publish.sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE
from publish.sbom import SPEC_VERSION, Template, sbom_json
from publish.signing import NAMESPACE, SIGNATURE_SUFFIX, SigningKey
from publish.stores.base import IntegrityError, Log, Progress, Store
from publish.sums import SUMS, SUMS_SIG, render, sha256
from publish.upload_digests import DigestingReader, FileDigests, file_blocks, part_layout
from publish.vhd_artifact import VhdPlan, VhdStream, disk_boot_modes, plan_vhd, raw_disk

METADATA = "metadata.json"
BUILD_LOG = "build.log"
JUNIT = "junit.xml"
SBOM = "sbom.cdx.json"
PROVENANCE = "provenance.intoto.json"
PROVENANCE_SIG = PROVENANCE + SIGNATURE_SUFFIX


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
    inventory: Inventory | None = None  # loaded and checked before anything is uploaded
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
    p: Planned,
    store: Store,
    redactor: Redactor,
    log: Log,
    key: SigningKey | None = None,
    *,
    pointers: bool = True,
) -> Published:
    """The build folder (artifact, log, JUnit, the VHD, SBOM, provenance, SHA256SUMS, then
    metadata.json), then `latest.json` unless `pointers` is off (a fan-out shard: the index
    job moves every pointer)."""
    c, art = p.candidate, p.artifact
    art_key = f"{p.folder}/{art.name}"
    meta_key = f"{p.folder}/{METADATA}"
    existing = store.get_bytes(meta_key)
    if existing is not None:
        reused = True
        meta = _reuse(p, store, existing, log, key)
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
        artifact = {
            "name": art.name,
            "format": "xva",
            "compression": art.compression,
            "size": digests.size,
            "sha256": digests.sha256,
        }
        files = _upload_texts(p, store, redactor, log)
        vhd, modes = _upload_vhd(p, store, log) if p.vhd else (None, None)
        if modes is None and art.source_format != "xva":  # read from the raw disk's GPT
            modes = disk_boot_modes(art.source)
        sbom = _upload_sbom(p, store, redactor, artifact, files)
        provenance = _upload_provenance(
            p, store, redactor, artifact=artifact, vhd=vhd, files=files, key=key
        )
        meta = build_metadata(
            c,
            build_id=p.build_id,
            artifact=artifact,
            source=art.describe(),
            files=files,
            commit_time=p.commit_time,
            order=p.order,
            published_at=time.time(),
            vhd=vhd,
            boot_modes=modes,
            sbom=sbom,
            provenance=provenance,
            signature=_signature_block(key),
        )
        body = redactor.data(json.dumps(meta, indent=2, sort_keys=True).encode() + b"\n")
        _upload_sums(p, store, meta, metadata=body, key=key)
        store.put_bytes(meta_key, body, "application/json")  # last: the folder is complete
        signed = f"signed by {key.describe()}" if key else "unsigned"
        log(
            f"{c.os_name}: {store.describe(p.folder)}/ complete and verified "
            f"({art.name}: {digests.size} bytes, sha256 {digests.sha256}; SBOM of "
            f"{sbom['packages']} packages; {SUMS} {signed})"
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


def _reuse(
    p: Planned, store: Store, existing: bytes, log: Log = print, key: SigningKey | None = None
) -> dict[str, Any]:
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
    files = meta.get("files", {})
    for name in folder_objects(meta):
        head = store.head(f"{p.folder}/{name}")
        if head is None or head.size != files.get(name, {}).get("size", head.size) or not head.size:
            raise IntegrityError(f"{store.describe(p.folder)}/{name} is missing or truncated")
    if "vhd" in meta:
        vhd = meta["vhd"]
        store.check_object(f"{p.folder}/{vhd['name']}", int(vhd["size"]), str(vhd["sha256"]))
    elif p.vhd is not None:
        if is_signed(meta) and key is None:
            raise IntegrityError(
                f"{store.describe(p.folder)} is a signed build: adding its VHD rewrites "
                f"{SUMS} and its signature, which needs the signing key (TEMPLATE_SIGNING_KEY)"
            )
        meta["vhd"], meta["boot_modes"] = _upload_vhd(p, store, log)
        if "signature" in meta:  # metadata v3: SHA256SUMS lists the VHD too
            meta["signature"] = _signature_block(key)
        validate_metadata(meta)
        body = json.dumps(meta, indent=2, sort_keys=True).encode() + b"\n"
        if "signature" in meta:
            # SHA256SUMS (and its signature) first, then metadata.json, as for a new build;
            # between the two writes a reader sees them disagree and refuses the build (one
            # line). The provenance written then does not name the VHD.
            _upload_sums(p, store, meta, metadata=body, key=key)
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


def _put(store: Store, key: str, data: bytes, content_type: str) -> dict[str, Any]:
    """A small object, written and read back (put_bytes); its size and sha256 for files."""
    store.put_bytes(key, data, content_type)
    return {"size": len(data), "sha256": sha256(data)}


def _upload_sbom(
    p: Planned,
    store: Store,
    redactor: Redactor,
    artifact: dict[str, Any],
    files: dict[str, Any],
) -> dict[str, Any]:
    """The CycloneDX SBOM of the image (publish/sbom.py), validated, uploaded and verified."""
    c, inv = p.candidate, p.inventory
    if inv is None:  # api.publish_results refuses such candidates before any upload
        raise IntegrityError(f"{c.os_name}: no package inventory to write its SBOM from")
    template = Template(
        os_name=c.os_name,
        family=str(c.record["family"]),
        os_version=str(c.record["version"]),
        build_id=p.build_id,
        inputs_digest=c.build.get("inputs_digest"),
        artifact_name=str(artifact["name"]),
        artifact_sha256=str(artifact["sha256"]),
        harness_version=str(c.results.data["harness_version"]),
    )
    data = redactor.data(sbom_json(inv, template))
    files[SBOM] = _put(store, f"{p.folder}/{SBOM}", data, SBOM_MEDIA_TYPE)
    return {
        "name": SBOM,
        "format": "CycloneDX",
        "spec_version": SPEC_VERSION,
        "package_database": inv.database,
        "packages": len(inv.packages),
        "components": len(inv.packages) + len(inv.kernels) + 1,
        "kernels": [k.release for k in inv.kernels],
    }


def _upload_provenance(
    p: Planned,
    store: Store,
    redactor: Redactor,
    *,
    artifact: dict[str, Any],
    vhd: dict[str, Any] | None,
    files: dict[str, Any],
    key: SigningKey | None,
) -> dict[str, Any]:
    """The in-toto statement with its SLSA provenance, and its signature when there is a key.
    Its subjects: the XVA, and the VHD when there is one."""
    c = p.candidate
    doc = statement(
        c,
        build_id=p.build_id,
        artifact=(str(artifact["name"]), str(artifact["sha256"])),
        also=[(str(vhd["name"]), str(vhd["sha256"]))] if vhd else [],
        checks={
            "passed": list(c.record["checks"]["passed"]),
            "failed": list(c.record["checks"]["failed"]),
            "skipped": [dict(x) for x in c.record["checks"]["skipped"]],
        },
        byproducts={name: info["sha256"] for name, info in files.items()},
        publisher_version=__version__,
        media_types={SBOM: SBOM_MEDIA_TYPE},
    )
    data = redactor.data(encode_statement(doc))
    files[PROVENANCE] = _put(store, f"{p.folder}/{PROVENANCE}", data, "application/json")
    signature = None
    if key is not None:
        sig = key.sign(data)
        files[PROVENANCE_SIG] = _put(store, f"{p.folder}/{PROVENANCE_SIG}", sig, "text/plain")
        signature = PROVENANCE_SIG
    return {"name": PROVENANCE, "predicate_type": PREDICATE_TYPE, "signature": signature}


def _signature_block(key: SigningKey | None) -> dict[str, Any]:
    return {
        "state": "signed" if key else "unsigned",
        "sums": SUMS,
        "file": SUMS_SIG if key else None,
        "namespace": NAMESPACE,
        "key": key.fingerprint if key else None,
        "key_type": key.key_type if key else None,
    }


def _upload_sums(
    p: Planned, store: Store, meta: dict[str, Any], *, metadata: bytes, key: SigningKey | None
) -> None:
    """SHA256SUMS of every file of the folder (metadata.json's final bytes included), and its
    signature; both before metadata.json, which marks the folder complete."""
    sums = render({**listed_digests(meta), METADATA: sha256(metadata)})
    store.put_bytes(f"{p.folder}/{SUMS}", sums, "text/plain")
    if key is not None:
        store.put_bytes(f"{p.folder}/{SUMS_SIG}", key.sign(sums), "text/plain")
