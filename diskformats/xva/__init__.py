"""XVA, the format XAPI imports and exports: a tar whose first member is `ova.xml`, then each disk
as numbered chunks (`Ref:N/00000000`), each followed by its checksum member.

The reader and the writer stream: memory stays bounded by one chunk whatever the disk size.
Semantics follow xen-api's `stream_vdi.ml` (what a real pool accepts), not a stricter idea of it.
"""

from __future__ import annotations

CHUNK_SIZE = 1 << 20  # XAPI and Xen Orchestra both cut disks into 1 MiB chunks
MAX_MEMBER = 16 << 20  # a chunk larger than this is not from any known writer; refuse, stay flat


class XvaError(Exception):
    """A malformed, corrupt or truncated XVA; `member` names the tar member at fault."""

    def __init__(self, message: str, member: str | None = None):
        super().__init__(message)
        self.member = member
