"""The VHD beside the XVA: what CloudStack's XenServer/XCP-ng zones register (TEMPLATE_PUBLISH_VHD).

Written while it is uploaded, from the raw disk the checks booted: a dynamic VHD whose holes are
neither read nor stored, optionally bzip2'd (`.vhd.bz2`, which CloudStack's secondary storage
unpacks), the raw disk's sha256 checked against the build record in the same read pass. An XVA
build (the xcpng platform) is first unpacked into a sparse raw disk in a scratch folder, its chunk
checksums verified on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.ownership import scratch
from diskformats.bootdisk import boot_modes
from diskformats.vhd import SUFFIX
from diskformats.vhd.writer import vhd_size, vhd_stream
from diskformats.xva.reader import xva_to_raw
from publish.gating import Candidate
from publish.stores.base import IntegrityError
from publish.upload_digests import FileDigests

VHD_CHOICES = ("none", "vhd", "bzip2")


@dataclass(frozen=True)
class VhdPlan:
    name: str  # <os>.vhd or <os>.vhd.bz2
    compression: str  # "none" or "bzip2"
    built_at: float  # the VHD's time stamp: the same build gives the same bytes

    def describe(self, digests: FileDigests, disk_size: int) -> dict[str, Any]:
        """The `vhd` block of metadata.json."""
        return {
            "name": self.name,
            "format": "vhd",
            "compression": self.compression,
            "size": digests.size,
            "sha256": digests.sha256,
            "disk_size": disk_size,
        }


def plan_vhd(c: Candidate, choice: str) -> VhdPlan | None:
    if choice == "none":
        return None
    compression = "bzip2" if choice == "bzip2" else "none"
    return VhdPlan(f"{c.os_name}{SUFFIX[compression]}", compression, float(c.build["built_at"]))


def disk_boot_modes(raw: Path) -> list[str]:
    fd = os.open(raw, os.O_RDONLY)
    try:
        return boot_modes(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def raw_disk(c: Candidate, source_format: str) -> Iterator[Path]:
    """The raw disk of the candidate: the artifact itself, or its XVA unpacked for the while."""
    if source_format != "xva":
        yield c.artifact
        return
    with scratch("xcpng-publish-vhd") as tmp:
        raw = Path(tmp) / "disk.raw"
        xva_to_raw(c.artifact, raw)
        yield raw


class VhdStream:
    """The published VHD bytes of one raw disk, read once; checks the disk at the end."""

    def __init__(self, plan: VhdPlan, raw: Path, expected_sha256: str | None):
        self.plan, self.raw, self.expected = plan, raw, expected_sha256
        self._hash = hashlib.sha256()
        self.disk_size = raw.stat().st_size

    def size_hint(self) -> int:
        fd = os.open(self.raw, os.O_RDONLY)
        try:
            return vhd_size(fd, self.disk_size)
        finally:
            os.close(fd)

    def blocks(self) -> Iterator[bytes]:
        seed = bytes.fromhex(self.expected) if self.expected else None
        with self.raw.open("rb") as fh:
            yield from vhd_stream(
                fh.fileno(),
                self.disk_size,
                created_at=self.plan.built_at,
                compression=self.plan.compression,
                source_hash=self._hash,
                seed=seed,
            )

    def check(self) -> Callable[[FileDigests], None]:
        def on_end(_digests: FileDigests) -> None:
            if self.expected and self._hash.hexdigest() != self.expected:
                raise IntegrityError(
                    f"{self.raw} changed since the build (its sha256 differs from the build "
                    "record): the VHD was not published; rebuild and check it again"
                )

        return on_end
