"""Which distribution and release an image is: /etc/os-release (ID, VERSION_CODENAME, ...)."""

from __future__ import annotations

import shlex

from pkgdb.reader import ImageReader

PATHS = ("/etc/os-release", "/usr/lib/os-release")


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            parts = shlex.split(value) if value else [""]
            out[key] = parts[0] if parts else ""
    return out


def read_os_release(reader: ImageReader) -> dict[str, str]:
    """The image's os-release fields ({} when it has none)."""
    path = next((p for p in PATHS if reader.exists(p)), None)
    return parse_os_release(reader.read_bytes(path).decode("utf-8", "replace")) if path else {}
