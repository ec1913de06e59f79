"""`xcpng-golden store fetch`: one published build onto this machine, verified.

The artifact is written to `<name>.part` beside its final name, with `<name>.part.json`
saying which object (location, build, sha256, version token) the bytes came from. An
interrupted download keeps both; the next run with the same build re-hashes the part and
resumes from its end (S3: a ranged GET pinned to the object's ETag; folder: a seek). Only a
complete file whose size and sha256 match the metadata is renamed to its final name, so a
partial or corrupt file never carries it. `<name>.metadata.json` is written beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.errors import InfrastructureError, UsageError
from core.files import BLOCK, read_json, sha256_file, write_atomic
from publish.source import FILE_METADATA_SUFFIX, Build
from publish.stores.base import IntegrityError, Log

PART = ".part"


class ChecksumMismatch(IntegrityError):
    """The downloaded bytes are not the ones the metadata describes."""


@dataclass
class Fetched:
    artifact: Path
    metadata: Path
    resumed_from: int  # bytes already there from an interrupted run
    reused: bool  # the final file was already there and verified


class Progress:
    """Download progress: one rewritten line on a terminal, a line every 10 % elsewhere."""

    def __init__(self, name: str, total: int, stream: IO[str] | None = None, done: int = 0):
        self.name, self.total, self.done = name, max(total, 1), done
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.start, self.start_done = time.monotonic(), done
        self.last_draw = 0.0
        self.last_tenth = done * 10 // self.total

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.tty:
            if now - self.last_draw >= 0.2 or self.done >= self.total:
                self.last_draw = now
                self.stream.write("\r" + self.line(now))
                self.stream.flush()
        elif (tenth := self.done * 10 // self.total) > self.last_tenth:
            self.last_tenth = tenth
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float) -> str:
        rate = (self.done - self.start_done) / max(now - self.start, 1e-6)
        left = (self.total - self.done) / rate if rate > 0 else 0
        return (
            f"{self.name}: {self.done * 100 // self.total:3d}% "
            f"{self.done / 2**20:,.0f} of {self.total / 2**20:,.0f} MiB, "
            f"{rate / 2**20:,.1f} MiB/s, {left:,.0f} s left"
        )

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def fetch(
    build: Build,
    to: Path,
    log: Log = print,
    progress: IO[str] | None = None,
    extras: dict[str, bytes] | None = None,
) -> Fetched:
    """Download `build`'s artifact and metadata into `to` (see module doc). `extras`: the
    build's other files, already verified (publish/trust.py), written beside the artifact as
    `<artifact>.<name>` once the artifact is whole."""
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--to {to}: cannot make that folder ({e.strerror})") from None
    final = to / build.name
    meta_path = to / (build.name + FILE_METADATA_SUFFIX)
    meta_bytes = build.raw or (json.dumps(build.meta, indent=2, sort_keys=True) + "\n").encode()
    if _already(final, build):
        write_atomic(meta_path, meta_bytes)
        _write_extras(to, build, extras)
        log(f"{final} is already build {build.build_id} (sha256 verified); nothing downloaded")
        return Fetched(final, meta_path, 0, reused=True)
    token = build.token()
    part, state_path = to / (build.name + PART), to / (build.name + PART + ".json")
    state = {
        "location": build.location,
        "build_id": build.build_id,
        "sha256": build.sha256,
        "size": build.size,
        "token": token,
    }
    offset, digest = _resume_point(part, state_path, state, log)
    free = shutil.disk_usage(to).free
    if free < build.size - offset:
        raise UsageError(
            f"{to} has {free >> 20} MiB free, the download needs {(build.size - offset) >> 20} "
            "MiB more; free space or choose another --to"
        )
    write_atomic(state_path, json.dumps(state, indent=2) + "\n")
    log(
        f"{build.os_name} {build.build_id}: {build.location} -> {final}"
        + (f" (resuming at byte {offset})" if offset else "")
    )
    bar = Progress(build.name, build.size, progress, done=offset)
    try:
        _download(build, part, (offset, token), digest, bar)
    except OSError as e:
        raise InfrastructureError(
            f"downloading to {part} failed at byte {bar.done} ({e.strerror or e}); the part is kept"
        ) from None
    finally:
        bar.finish()
    _verify(part, state_path, build, digest)
    os.replace(part, final)
    state_path.unlink(missing_ok=True)
    write_atomic(meta_path, meta_bytes)
    _write_extras(to, build, extras)
    log(f"{final}: {build.size} bytes, sha256 {build.sha256} verified")
    return Fetched(final, meta_path, offset, reused=False)


def _write_extras(to: Path, build: Build, extras: dict[str, bytes] | None) -> None:
    for name, data in sorted((extras or {}).items()):
        write_atomic(to / f"{build.name}.{name}", data)


def _already(final: Path, build: Build) -> bool:
    if not final.is_file() or final.stat().st_size != build.size:
        return False
    return sha256_file(final) == build.sha256


def _resume_point(part: Path, state_path: Path, state: dict[str, Any], log: Log) -> tuple[int, Any]:
    """Bytes already downloaded for this very object, and the hash of them."""
    digest = hashlib.sha256()
    old = read_json(state_path)
    if part.is_file() and old == state and part.stat().st_size <= state["size"]:
        with part.open("rb") as fh:
            while block := fh.read(BLOCK):
                digest.update(block)
        return part.stat().st_size, digest
    if part.exists():
        log(f"{part}: left by a download of another object; starting again")
        part.unlink()
    return 0, digest


def _download(
    build: Build, part: Path, start: tuple[int, str | None], digest: Any, bar: Progress
) -> None:
    offset, token = start
    with contextlib.closing(build.open(offset, token)) as src, part.open("ab") as out:
        while block := src.read(BLOCK):
            digest.update(block)
            out.write(block)
            bar.add(len(block))
        out.flush()
        os.fsync(out.fileno())


def _verify(part: Path, state_path: Path, build: Build, digest: Any) -> None:
    """Size and sha256 of the finished part; a mismatch removes it (resuming cannot fix it)."""
    size, got = part.stat().st_size, digest.hexdigest()
    if size == build.size and got == build.sha256:
        return
    part.unlink(missing_ok=True)
    state_path.unlink(missing_ok=True)
    what = f"{size} bytes, expected {build.size}" if size != build.size else f"sha256 {got}"
    raise ChecksumMismatch(
        f"checksum mismatch: {build.location} downloaded as {what}, metadata says sha256 "
        f"{build.sha256}; the download was removed. Run fetch again; if it fails the same way "
        "the stored object is damaged (xcpng-golden store verify --deep)"
    )
