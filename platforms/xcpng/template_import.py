"""A published template onto the pool: `xcpng-golden pool import`.

The XVA streams from where it is published (S3, a folder, a file) straight into `PUT /import`
through the same XAPI code the harness boots with (`xva_import.import_xva`), with no local copy.
Its sha256 is computed on the way; the last `HOLD` bytes (more than the XVA's last disk chunk,
its checksum member and the tar trailer) are held back until the digest of the whole is known,
so a wrong artifact is cut off before the pool can finish importing it, and whatever the pool
had created of it is removed (`xva_import.drop_import`) in any case.

The template is recorded in its `other_config` (OS, build id, sha256, source, git revision,
import time), which makes the import idempotent: the same build already in the pool is
reported, not imported again. A template name belongs to one OS's builds; `--replace` renames
the template holding it to `<name>-<its build id>` (never deletes it) once the new build is
in. The tags Packer's build VM carried (run id, expiry: the janitor's selection) are stripped
from the template and its disks, so no cleanup ever mistakes it for a leftover.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import XenAPI

from core.errors import InfrastructureError, UsageError
from platforms.xcpng import objects, xva_import
from platforms.xcpng.cleanup import name_tags
from platforms.xcpng.client import Xapi, describe
from platforms.xcpng.ledger import KEY_CREATED, KEY_EXPIRES, KEY_RUN
from platforms.xcpng.transfer import Stream

log = logging.getLogger("platforms.xcpng")
KEY_OS = "xcpng-golden-os"
KEY_BUILD = "xcpng-golden-build-id"
KEY_SHA = "xcpng-golden-sha256"
KEY_SOURCE = "xcpng-golden-source"
KEY_REVISION = "xcpng-golden-git-revision"
KEY_IMPORTED = "xcpng-golden-imported-at"
JANITOR_KEYS = (KEY_RUN, KEY_CREATED, KEY_EXPIRES)
HOLD = 4 << 20
PIECE = 1 << 20


class Readable(Stream, Protocol):
    def close(self) -> None: ...


class Artifact(Protocol):
    """A published build as the importer needs it (publish.source.Build is one)."""

    @property
    def os_name(self) -> str: ...
    @property
    def build_id(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def location(self) -> str: ...
    @property
    def git_revision(self) -> str | None: ...
    @property
    def format(self) -> str | None: ...

    def token(self) -> str | None: ...

    def open(self, offset: int = 0, token: str | None = None) -> Readable: ...


class ChecksumMismatch(Exception):
    """The streamed artifact is not the one its metadata describes."""


@dataclass
class Outcome:
    status: str  # "imported" or "present"
    vm: str
    uuid: str
    name: str
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old name, new name)

    def lines(self, artifact: Artifact) -> list[str]:
        what = f"{artifact.os_name} build {artifact.build_id}"
        if self.status == "present":
            return [
                f"{what} is already in the pool as template {self.name!r} ({self.uuid}); "
                "nothing imported"
            ]
        out = [f"{old!r} renamed to {new!r}" for old, new in self.renamed]
        return [*out, f"{what} imported as template {self.name!r} ({self.uuid})"]


class _Verified:
    """The artifact's bytes, hashed as they are read; the last `hold` bytes are read ahead and
    checked before any of them is handed out (see module doc)."""

    def __init__(self, src: Stream, artifact: Artifact, hold: int):
        self.src, self.artifact, self.hold = src, artifact, hold
        self.digest = hashlib.sha256()
        self.pos = 0
        self.tail: bytes | None = None

    def read(self, n: int = -1, /) -> bytes:
        n = PIECE if n < 0 else n
        if self.tail is None and self.pos + n > self.artifact.size - self.hold:
            self.tail = self._rest()
        if self.tail is not None:
            out, self.tail = self.tail[:n], self.tail[n:]
            return out
        data = self.src.read(n)
        if not data:
            self._fail(f"ended after {self.pos} of {self.artifact.size} bytes")
        self.digest.update(data)
        self.pos += len(data)
        return data

    def _rest(self) -> bytes:
        parts = []
        while self.pos < self.artifact.size:
            data = self.src.read(min(PIECE, self.artifact.size - self.pos))
            if not data:
                self._fail(f"ended after {self.pos} of {self.artifact.size} bytes")
            self.digest.update(data)
            parts.append(data)
            self.pos += len(data)
        if self.src.read(1):
            self._fail(f"is longer than the {self.artifact.size} bytes its metadata says")
        if self.digest.hexdigest() != self.artifact.sha256:
            self._fail(f"has sha256 {self.digest.hexdigest()}")
        return b"".join(parts)

    def _fail(self, what: str) -> None:
        a = self.artifact
        raise ChecksumMismatch(
            f"{a.location} {what}, its metadata says sha256 {a.sha256} ({a.size} bytes): "
            "the import was stopped and nothing of it kept; if this repeats the stored object "
            "is damaged (xcpng-golden store verify --deep)"
        )


@dataclass
class VerifiedBody:
    """What `PUT /import` sends: the artifact from the store, opened afresh per attempt."""

    artifact: Artifact
    hold: int = HOLD

    @property
    def size(self) -> int:
        return self.artifact.size

    @contextlib.contextmanager
    def _stream(self) -> Iterator[Stream]:
        with contextlib.closing(self.artifact.open(0, self.artifact.token())) as src:
            yield _Verified(src, self.artifact, self.hold)

    def open(self) -> AbstractContextManager[Stream]:
        return self._stream()


def templates_of(xapi: Xapi, os_name: str) -> dict[str, dict[str, Any]]:
    """Every VM or template this command imported for `os_name`, by ref."""
    records: dict[str, dict[str, Any]] = xapi.call("VM.get_all_records")
    return {r: rec for r, rec in records.items() if rec["other_config"].get(KEY_OS) == os_name}


def import_template(
    xapi: Xapi,
    artifact: Artifact,
    *,
    label: str,
    sr_name: str | None = None,
    replace: bool = False,
    hold: int = HOLD,
) -> Outcome:
    """Import `artifact` as template `label` unless that build is there already (module doc)."""
    if artifact.format not in (None, "xva"):
        raise UsageError(
            f"{artifact.location} is a {artifact.format} image; only XVAs import into a pool"
        )
    ours = templates_of(xapi, artifact.os_name)
    for ref, rec in ours.items():
        if rec["other_config"].get(KEY_BUILD) == artifact.build_id:
            return _present(xapi, ref, rec, artifact)
    holders = _holders(xapi, label, ours, artifact, replace)
    sr = objects.find_sr(xapi, sr_name)
    log.info(
        "importing %s build %s from %s", artifact.os_name, artifact.build_id, artifact.location
    )
    vm = xva_import.import_xva(
        xapi,
        VerifiedBody(artifact, hold),
        sr,
        name=label,
        what=f"{artifact.os_name} build {artifact.build_id}",
    )
    try:
        _adopt(xapi, vm, artifact)
    except (XenAPI.Failure, OSError) as exc:
        left = objects.destroy_vm(xapi, vm)
        raise InfrastructureError(
            f"{label}: recording the template failed ({xapi.redactor(describe(exc))}); "
            + ("the import was removed" if not left else f"left: {'; '.join(left)}")
        ) from None
    renamed = []
    for ref in holders:
        new = f"{label}-{ours[ref]['other_config'].get(KEY_BUILD, 'unknown')}"
        xapi.call("VM.set_name_label", ref, new)
        renamed.append((label, new))
    xapi.call("VM.set_name_label", vm, label)
    return Outcome("imported", vm, str(xapi.call("VM.get_uuid", vm)), label, renamed)


def _present(xapi: Xapi, ref: str, rec: dict[str, Any], artifact: Artifact) -> Outcome:
    have = rec["other_config"].get(KEY_SHA)
    if have != artifact.sha256:
        raise UsageError(
            f"template {rec['name_label']!r} claims {artifact.os_name} build {artifact.build_id} "
            f"with sha256 {have}, the store has {artifact.sha256}; remove or rename it first"
        )
    return Outcome("present", ref, str(rec["uuid"]), str(rec["name_label"]))


def _holders(
    xapi: Xapi, label: str, ours: dict[str, dict[str, Any]], artifact: Artifact, replace: bool
) -> list[str]:
    """Templates named `label` that --replace will rename; refuse a name someone else holds."""
    records: dict[str, dict[str, Any]] = xapi.call("VM.get_all_records")
    holders = [r for r, rec in records.items() if rec.get("name_label") == label]
    foreign = [r for r in holders if r not in ours]
    if foreign:
        raise UsageError(
            f"{label!r} is already the name of a VM or template that is not a "
            f"{artifact.os_name} template imported by this command; choose another --name"
        )
    if holders and not replace:
        builds = ", ".join(str(ours[r]["other_config"].get(KEY_BUILD)) for r in holders)
        raise UsageError(
            f"template {label!r} holds {artifact.os_name} build {builds}; pass --replace to "
            f"rename it to {label}-<its build id> and import build {artifact.build_id} as "
            f"{label!r}, or choose another --name"
        )
    return holders


def _adopt(xapi: Xapi, vm: str, artifact: Artifact) -> None:
    """Make the imported VM our template: a template, without the build run's janitor tags
    (VM and disks), recording where it came from."""
    if not xapi.call("VM.get_is_a_template", vm):
        xapi.call("VM.set_is_a_template", vm, True)
    values = {
        KEY_OS: artifact.os_name,
        KEY_BUILD: artifact.build_id,
        KEY_SHA: artifact.sha256,
        KEY_SOURCE: artifact.location,
        KEY_REVISION: artifact.git_revision or "",
        KEY_IMPORTED: str(int(time.time())),
    }
    for key in (*JANITOR_KEYS, *values):
        xapi.call("VM.remove_from_other_config", vm, key)
    for key, value in values.items():
        xapi.call("VM.add_to_other_config", vm, key, value)
    xapi.call(
        "VM.set_name_description",
        vm,
        f"{artifact.os_name} golden template, build {artifact.build_id}, "
        f"sha256 {artifact.sha256}, from {artifact.location}",
    )
    for vdi in objects.disk_vdis(xapi, vm):
        for key in JANITOR_KEYS:
            xapi.call("VDI.remove_from_other_config", vdi, key)
        name = str(xapi.call("VDI.get_name_label", vdi))
        if name_tags(name):
            xapi.call("VDI.set_name_label", vdi, name.partition("?")[0])
