"""Archives made in memory for the credential scanner's tests and the mutation table."""

from __future__ import annotations

import io
import tarfile
import zipfile


def tar_of(files: dict[str, bytes], compression: str = "") -> bytes:
    """A tar (compression "", "gz", "bz2" or "xz") holding `files`, each mode 0600."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compression}") as tar:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()
