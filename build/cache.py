"""The image cache: built images reused across runs and sessions by inputs digest and age.

Layout: <cache>/images/<os>/<platform>/<digest>/{image.<fmt>, build.json}. An entry appears
only by an atomic rename of a finished temporary folder, so a reader never sees half an image;
its sha256 is checked again before reuse.

An entry stays sparse: the image is moved in by rename (never copied), and its sha256 is
checked by `core.files.sha256_file`, which reads only data (SEEK_DATA) but must hash the holes'
zeros: 6 s for an 8 GiB disk holding 1 GiB. Once it matched, the entry records a seal beside
the image (`core.files.data_seal`: the data and the hole map, xxh3, 0.3 s); a later lookup
whose seal matches skips the sha256, and one whose seal differs falls back to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path

from core.files import data_seal, read_json, sha256_file, write_json_atomic
from core.model import BuildResult
from core.ownership import stale_entries, tag, temp_dir
from core.trees import remove_trees

SEAL = "seal.json"  # {"sha256": ..., "seal": ...}: the image checked once, fingerprinted


def _intact(image: Path, sha256: str) -> bool:
    """The image still has `sha256`: by its seal when one was recorded for that sha256 and
    still matches, else by hashing it (and sealing it for the next lookup). The caller holds
    the entry's lock: the image does not change meanwhile."""
    if sealed_sha256(image) == sha256:
        return True
    if sha256_file(image) != sha256:
        return False
    with contextlib.suppress(OSError):
        write_seal(image, sha256)
    return True


def write_seal(image: Path, sha256: str) -> None:
    """Seal an image whose sha256 was just computed, beside it (`<entry>/seal.json`)."""
    write_json_atomic(image.parent / SEAL, {"sha256": sha256, "seal": data_seal(image)})


def sealed_sha256(image: Path) -> str | None:
    """The sha256 recorded for `image` if its seal still matches (0.3 s, where hashing it is
    6 s), else None: cache lookups and the publisher (publish/artifact.py) check it this way."""
    recorded = read_json(image.parent / SEAL)
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        return None
    return recorded["sha256"] if recorded.get("seal") == data_seal(image) else None


def detect_format(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(512)
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    if head[257:262] == b"ustar" or path.suffix == ".xva":
        return "xva"
    return "raw"


class ImageCache:
    def __init__(self, root: Path):
        self.root = root

    def slot(self, os_name: str, platform: str) -> Path:
        return self.root / "images" / os_name / platform

    def entry(self, os_name: str, platform: str, digest: str) -> Path:
        return self.slot(os_name, platform) / digest

    def lock_path(self, os_name: str, platform: str, digest: str) -> Path:
        p = self.slot(os_name, platform) / f"{digest}.lock"
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def new_tmp(self, os_name: str, platform: str, digest: str, run_id: str) -> Path:
        """A folder beside the entry, named after this process (core.ownership), so what a
        killed build left is recognised and removed by the next one."""
        slot = self.slot(os_name, platform)
        remove_trees(stale_entries(slot, (".tmp-", ".trash-")))
        safe_run = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)  # a run id is free text
        return temp_dir(f".tmp-{digest[:12]}-{safe_run}", slot)

    def lookup(
        self, os_name: str, platform: str, digest: str, max_age_s: float
    ) -> tuple[BuildResult | None, str]:
        """A reusable entry, or None and why not (shown in the build log)."""
        entry = self.entry(os_name, platform, digest)
        record = entry / "build.json"
        if not record.is_file():
            return None, "no cached image for these inputs"
        try:
            result = BuildResult.from_json(json.loads(record.read_text()))
        except (ValueError, TypeError) as exc:
            self.discard(entry, "unreadable build.json")
            return None, f"cached record unreadable ({exc}); rebuilding"
        age = time.time() - (result.built_at or 0)
        if max_age_s <= 0 or age > max_age_s:
            return None, f"cached image is {age / 3600:.1f}h old (limit {max_age_s / 3600:.1f}h)"
        image = Path(result.artifact or "")
        if not image.is_file() or image.stat().st_size != result.size:
            self.discard(entry, "image missing or wrong size")
            return None, "cached image missing or truncated; rebuilding"
        if not _intact(image, str(result.sha256)):
            self.discard(entry, "sha256 mismatch")
            return None, "cached image failed its sha256 check; rebuilding"
        return result, "cache hit"

    def commit(self, tmp: Path, os_name: str, platform: str, digest: str) -> Path:
        """Rename a finished temporary folder into place; the old entry, if any, goes away."""
        entry = self.entry(os_name, platform, digest)
        if entry.exists():
            self.discard(entry, "replaced by a rebuild")
        os.rename(tmp, entry)
        return entry

    def discard(self, entry: Path, why: str) -> None:
        """Take the entry out of its final name first (atomic), then remove it."""
        if not entry.exists():
            return
        trash = entry.with_name(f"{tag(f'.trash-{entry.name[:12]}')}{int(time.time())}")
        with contextlib.suppress(OSError):
            os.rename(entry, trash)
            (trash / "DISCARDED").write_text(why + "\n")
        remove_trees([trash])
