"""What a user downloads: always an XVA, the format XCP-ng imports.

- A raw disk (the local platform's build) is written as an XVA while it is uploaded: all-zero
  chunks left out as XAPI's export does, compressed (zstd by default), the firmware read from
  the disk's partition table, and the raw disk's sha256 checked against the build record in the
  same read pass. Nothing is written to a temporary file.
- An XVA (the XCP-ng platform's build, or `--xva`) that is not compressed, as Packer's
  xenserver-iso exports it (`format = "xva"`), is compressed (zstd by default) while it uploads,
  in the same single read that checks its sha256 against the build record; decompressed, it is
  the XVA that was imported and checked, byte for byte. An XVA already compressed is published
  as it is, and so is every XVA with `--publish-compression none`.

Why at publish time and not in the build: the checks boot the very raw disk the build made
(under a qcow2 overlay, no conversion per boot), only images that passed are converted, the
image cache keeps one sparse copy, and the compression can change without rebuilding.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build.cache import sealed_sha256
from diskformats.bootdisk import detect_firmware
from diskformats.xva import CHUNK_SIZE, XvaError
from diskformats.xva.reader import compression_of
from diskformats.xva.writer import XvaOptions, encoder, visited_chunks, xva_stream
from publish.gating import Candidate
from publish.stores.base import IntegrityError
from publish.upload_digests import FileDigests, file_blocks

PUBLISHED_FORMAT = "xva"
CONVERTIBLE = ("raw",)
# The VM a converted disk is described as; change it after import (a template is cloned).
VM_MEMORY = 2 << 30
VM_VCPUS = 2
TAR_OVERHEAD = 2048  # per chunk: two tar headers, the checksum member and its padding
HEADER_BOUND = 1 << 20  # ova.xml and the end-of-archive blocks
READ_BLOCK = 8 << 20  # an XVA as built is read in part-sized blocks: handed on without a copy


@dataclass(frozen=True)
class ArtifactPlan:
    """How one candidate's artifact becomes the published XVA."""

    name: str  # object name in the build folder: <os>.xva
    source: Path
    source_format: str  # "raw" (converted while uploading) or "xva" (as exported)
    source_size: int
    source_sha256: str  # the build record's: what the checks ran on
    compression: str  # of the published XVA
    firmware: str | None  # what the XVA asks for (converted disks); None: as exported
    size_hint: int  # the published size: exact for an XVA as built, else an upper bound
    vm_name: str
    source_compression: str | None = None  # an XVA's, as exported

    @property
    def as_built(self) -> bool:
        """The source XVA is published byte for byte."""
        return self.source_format == PUBLISHED_FORMAT and self.compression == (
            self.source_compression
        )

    def describe(self) -> dict[str, Any]:
        """The `source` block of metadata.json."""
        out: dict[str, Any] = {
            "format": self.source_format,
            "size": self.source_size,
            "sha256": self.source_sha256,
            "firmware": self.firmware,
        }
        if self.source_compression is not None:
            out["compression"] = self.source_compression
        return out


def artifact_format(c: Candidate) -> str:
    """raw, qcow2 or xva, from the build record or else from the file's first bytes."""
    recorded = c.build.get("artifact_format")
    if recorded:
        return str(recorded)
    with c.artifact.open("rb") as fh:
        head = fh.read(512)
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    try:
        compression_of(head)
    except XvaError:
        return "raw"
    return "xva"


def unpublishable(c: Candidate) -> str | None:
    """Why this artifact cannot become an XVA, or None."""
    fmt = artifact_format(c)
    if fmt in CONVERTIBLE or fmt == PUBLISHED_FORMAT:
        return None
    return (
        f"artifact {c.artifact.name} is {fmt}; the publisher writes XVAs from raw disks "
        "(qemu-img convert -O raw it, check that, and publish it)"
    )


def plan_artifact(c: Candidate, build_id: str, compression: str) -> ArtifactPlan:
    fmt = artifact_format(c)
    size = c.artifact.stat().st_size
    source_compression = None
    if fmt == PUBLISHED_FORMAT:
        with c.artifact.open("rb") as fh:
            source_compression = compression_of(fh.read(512))
        firmware, bound = None, size
        if source_compression != "none" or compression == "none":
            compression = source_compression  # published as built
        else:
            bound = size + size // 64 + HEADER_BOUND  # zstd/gzip worst case is far below
    else:
        fd = os.open(c.artifact, os.O_RDONLY)
        try:
            firmware = detect_firmware(fd)
            bound = visited_chunks(fd, size) * (CHUNK_SIZE + TAR_OVERHEAD) + HEADER_BOUND
        finally:
            os.close(fd)
    return ArtifactPlan(
        name=f"{c.os_name}.{PUBLISHED_FORMAT}",
        source=c.artifact,
        source_format=fmt,
        source_size=size,
        source_sha256=str(c.build["sha256"]),
        compression=compression,
        firmware=firmware,
        size_hint=bound,
        vm_name=f"{c.os_name}-{build_id}",
        source_compression=source_compression,
    )


class ArtifactStream:
    """The published bytes of one plan, read once; checks the source when the stream ends."""

    def __init__(self, plan: ArtifactPlan, description: str = ""):
        self.plan = plan
        self.description = description
        self._source_hash: Any = None
        self._unchanged: tuple[int, ...] | None = None  # the sealed source's identity

    def blocks(self) -> Iterator[bytes]:
        plan = self.plan
        if plan.as_built:
            yield from file_blocks(plan.source, READ_BLOCK)
            return
        if plan.source_format == PUBLISHED_FORMAT:
            self._source_hash = hashlib.sha256()
            yield from self._recompressed()
            return
        options = XvaOptions(
            name=plan.vm_name,
            memory=VM_MEMORY,
            vcpus=VM_VCPUS,
            firmware=plan.firmware or "auto",
            template=True,
            description=self.description,
            compression=plan.compression,
        )
        with plan.source.open("rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_size != plan.source_size:
                raise IntegrityError(self._changed("its size"))
            # A cached image whose seal still matches has the recorded sha256 (0.3 s); that it
            # did not change while read is its identity and change time, taken first and
            # compared at the end (a write moves the change time; no writer can set it back).
            # Else its sha256 is computed in this very read: 6 s for an 8 GiB disk's zeros.
            if sealed_sha256(plan.source) == plan.source_sha256:
                self._unchanged = _identity(st)
            else:
                self._source_hash = hashlib.sha256()
            yield from xva_stream(fh.fileno(), st.st_size, options, source_hash=self._source_hash)

    def _recompressed(self) -> Iterator[bytes]:
        """The source XVA compressed on the fly; its bytes hashed and counted in that read."""
        enc = encoder(self.plan.compression)
        read = 0
        for block in file_blocks(self.plan.source, READ_BLOCK):
            self._source_hash.update(block)
            read += len(block)
            if out := enc.compress(block):
                yield out
        if read != self.plan.source_size:
            raise IntegrityError(self._changed("its size"))
        if out := enc.flush():
            yield out

    def check(self) -> Callable[[FileDigests], None]:
        """The end-of-stream check: what was read is what the checks ran on."""

        def on_end(digests: FileDigests) -> None:
            plan = self.plan
            if self._unchanged is not None:
                if _identity(os.stat(plan.source)) != self._unchanged:
                    raise IntegrityError(
                        f"artifact {plan.source} was written to while it was published: "
                        "nothing of it was published; rebuild and check it again"
                    )
                return
            if self._source_hash is None:
                got = digests.sha256
                if digests.size != plan.source_size:
                    raise IntegrityError(self._changed("its size"))
            else:
                got = self._source_hash.hexdigest()
            if got != plan.source_sha256:
                raise IntegrityError(self._changed("its sha256"))

        return on_end

    def _changed(self, what: str) -> str:
        return (
            f"artifact {self.plan.source} changed since the build ({what} differs from the "
            "build record): nothing of it was published; rebuild and check it again"
        )


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
