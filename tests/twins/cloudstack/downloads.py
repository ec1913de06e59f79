"""The secondary storage's template download, one asynchronous job per zone, as CloudStack's
DownloadManagerImpl and HttpTemplateDownloader run it: really fetch the URL, count the percent
from Content-Length, check the checksum of the file as downloaded (`{ALGORITHM}hex`, MD5 when
unprefixed), then "install": unpack a .bz2 and read the VHD footer for the template's size.

Error texts are CloudStack's own (they reach the user as the template's status in listTemplates):
" HTTP Server returned 404 (expected 200 OK) ", "Failed post download script: checksum ...
didn't match the given value, ...", an I/O exception's message.
"""

from __future__ import annotations

import bz2
import hashlib
import struct
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from tests.twins.cloudstack.model import DOWNLOADED, ERROR, IN_PROGRESS, InZone, Template

if TYPE_CHECKING:
    from tests.twins.cloudstack.server import Faults

JAVA_DIGESTS = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384",
                "SHA-512": "sha512"}  # fmt: skip
CHUNK = 256 << 10


def parse_checksum(value: str | None) -> tuple[str, str]:
    """ChecksumValue: "{ALGORITHM}hex", or a bare hex string taken as MD5."""
    if not value:
        return "MD5", ""
    if value.startswith("{") and "}" in value:
        algorithm, _, digest = value[1:].partition("}")
        return algorithm, digest.lower()
    return "MD5", value.lower()


def vhd_size(path: Path) -> int | None:
    """The current size in a VHD's footer (the last 512 bytes), None if there is no footer."""
    with path.open("rb") as fh:
        fh.seek(-512, 2)
        footer = fh.read(512)
    if footer[:8] != b"conectix":
        return None
    return int(struct.unpack_from(">Q", footer, 48)[0])


def run_download(template: Template, copy: InZone, faults: Faults, storage: Path) -> None:
    """The whole job; its outcome is left in `copy` (state, percent, error, sizes)."""
    copy.state, copy.percent = IN_PROGRESS, 0
    try:
        path = _fetch(template, copy, faults, storage)
        if path is None:
            return
        error = _install(template, copy, faults, path)
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        error = f"{reason.strerror if isinstance(reason, OSError) else reason}"
    if error:
        copy.state, copy.error = ERROR, error


def _fetch(template: Template, copy: InZone, faults: Faults, storage: Path) -> Path | None:
    if faults.download_failure:
        raise ConnectionRefusedError(111, "Connection refused (Connection refused)")
    rate = faults.slow_zones.get(copy.zone.name)
    try:
        response = urllib.request.urlopen(template.url, timeout=30)
    except urllib.error.HTTPError as exc:
        copy.state, copy.error = ERROR, f" HTTP Server returned {exc.code} (expected 200 OK) "
        return None
    target = Path(tempfile.mkstemp(prefix="dnld", suffix="tmp_", dir=storage)[1])
    with response, target.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        done, started = 0, time.monotonic()
        while chunk := response.read(CHUNK):
            if template.cancelled.is_set():
                return None
            out.write(chunk)
            done += len(chunk)
            copy.percent = min(int(100 * done / total), 99) if total else 0
            if rate:
                time.sleep(max(0.0, done / rate - (time.monotonic() - started)))
    if total and done < total:
        copy.state, copy.error = ERROR, f"Downloaded {done} bytes (incomplete download)"
        return None
    copy.physical_size = done
    return target


def _install(template: Template, copy: InZone, faults: Faults, path: Path) -> str | None:
    """DownloadManagerImpl.postLocalDownload: the checksum first, then createtmplt.sh."""
    algorithm, given = parse_checksum(template.checksum)
    if algorithm not in JAVA_DIGESTS:
        return f"Failed post download script: checksum algorithm not recognised: {algorithm}"
    if faults.checksum_mismatch:  # what reached the secondary storage is not what was served
        with path.open("r+b") as fh:
            first = fh.read(1)
            fh.seek(0)
            fh.write(bytes([first[0] ^ 0xFF]))
    h = hashlib.new(JAVA_DIGESTS[algorithm])
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    got = h.hexdigest()
    if given and got != given:
        return (
            f'Failed post download script: checksum "{{{algorithm}}}{got}" didn\'t match the '
            f'given value, "{{{algorithm}}}{given}"'
        )
    copy.percent = 100  # "Installing Template"
    disk = path
    if template.url.split("?", 1)[0].lower().endswith(".bz2"):
        disk = path.with_suffix(".vhd")
        with bz2.open(path, "rb") as src, disk.open("wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
    size = vhd_size(disk)
    if size is None:
        return "Failed post download script: the file is not a VHD (no footer)"
    copy.size, copy.state, copy.error = size, DOWNLOADED, None
    return None
