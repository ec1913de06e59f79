"""An image costs its data, not its virtual size, at every stop: the cache entry, the disk a
booted clone runs on (qcow2 overlay, or the raw disk of an XVA), and the XVA itself."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from build.cache import ImageCache
from core.files import sha256_file
from core.model import BuildResult
from diskformats.xva.reader import verify
from diskformats.xva.writer import raw_to_xva
from platforms.local import boot
from tests.support.publishing import sparse_disk

MiB = 1 << 20
VIRTUAL = 256 * MiB
DATA = 8 * MiB


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def record(artifact: Path, fmt: str) -> BuildResult:
    return BuildResult(
        os_name="debian12",
        status="built",
        artifact=str(artifact),
        artifact_format=fmt,
        sha256=sha256_file(artifact),
        size=artifact.stat().st_size,
        log_path=None,
        duration_s=0,
        packer_version=None,
        plugins={},
        inputs_digest="d",
        template=None,
        var_file=None,
        built_at=time.time(),
        platform="local",
    )


def test_cache_entry_stays_sparse_and_is_rehashed_without_reading_holes(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "cache")
    tmp = cache.new_tmp("debian12", "local", "d" * 64, "run")
    image = tmp / "image.raw"
    sparse_disk(image, VIRTUAL, DATA)
    entry = cache.entry("debian12", "local", "d" * 64)
    rec = dataclasses.replace(record(image, "raw"), artifact=str(entry / "image.raw"))
    (tmp / "build.json").write_text(json.dumps(rec.to_json()))
    cache.commit(tmp, "debian12", "local", "d" * 64)
    hit, why = cache.lookup("debian12", "local", "d" * 64, 3600)
    assert hit is not None, why
    kept = Path(hit.artifact or "")
    assert kept.stat().st_size == VIRTUAL and allocated(kept) <= DATA * 1.1
    assert hit.sha256 == hashlib.sha256(kept.read_bytes()).hexdigest()


def test_boot_disks_stay_sparse(tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    sparse_disk(raw, VIRTUAL, DATA)
    work = tmp_path / "work"
    work.mkdir()
    # a raw artifact is the overlay's backing file as it is: the overlay starts tiny
    backing, fmt = boot.backing_image(record(raw, "raw"), work)
    assert backing == raw.absolute()
    boot.make_overlay(backing, fmt, work / "overlay.qcow2")
    assert allocated(work / "overlay.qcow2") < MiB
    # an XVA (compressed, as published) becomes a sparse raw disk first
    xva = tmp_path / "image.xva"
    raw_to_xva(raw, xva, "debian12", compression="zstd")
    assert verify(xva).compression == "zstd"
    from_xva, fmt = boot.backing_image(record(xva, "xva"), work)
    assert fmt == "raw" and allocated(from_xva) <= DATA * 1.1
    assert sha256_file(from_xva) == sha256_file(raw)
    out = subprocess.run(
        ["qemu-img", "map", "--output=json", str(from_xva)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"data": true' in out and '"data": false' in out
