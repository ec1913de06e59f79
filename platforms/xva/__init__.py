"""XVA, the format XAPI imports and exports: a tar whose first member is `ova.xml`, then each disk
as numbered chunks (`Ref:N/00000000`), each followed by its checksum member.

The reader and the writer stream: memory stays bounded by one chunk whatever the disk size.
Semantics follow xen-api's `stream_vdi.ml` (what a real pool accepts), not a stricter idea of it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1 << 20  # XAPI and Xen Orchestra both cut disks into 1 MiB chunks
MAX_MEMBER = 16 << 20  # a chunk larger than this is not from any known writer; refuse, stay flat


class XvaError(Exception):
    """A malformed, corrupt or truncated XVA; `member` names the tar member at fault."""

    def __init__(self, message: str, member: str | None = None):
        super().__init__(message)
        self.member = member


@contextlib.contextmanager
def atomic_output(dest: Path) -> Iterator[BinaryIO]:
    """A temp file beside `dest` that becomes `dest` only if the block succeeds, so a failed or
    interrupted conversion never leaves a half-written file under the real name."""
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
