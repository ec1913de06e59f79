"""VHD, the disk format CloudStack's XenServer/XCP-ng hypervisor registers templates in: a
dynamic (sparse) VHD as the VHD specification (Microsoft, v1.0, 2006) lays it out, optionally
bzip2-compressed (CloudStack's secondary storage unpacks `.vhd.bz2` itself).

Layout of a dynamic VHD, every number big-endian, every structure on a 512-byte boundary:

    footer copy (512) | dynamic header (1024) | BAT (4 bytes per block, padded) |
    block: sector bitmap (512) + data (2 MiB) | ... | footer (512)

The writer and the reader stream: the writer reads the raw disk once (holes are found with
SEEK_HOLE and never read nor stored), the reader reads the file (or the bzip2 stream) once, front
to back, and both keep memory bounded by one block whatever the disk size.
"""

from __future__ import annotations

SECTOR = 512
BLOCK_SIZE = 2 << 20  # what XenServer's tapdisk and CloudStack expect; also qemu's default
COMPRESSIONS = ("bzip2", "none")
SUFFIX = {"none": ".vhd", "bzip2": ".vhd.bz2"}


class VhdError(Exception):
    """A malformed, corrupt or truncated VHD; `part` names the structure at fault."""

    def __init__(self, message: str, part: str | None = None):
        super().__init__(f"{part}: {message}" if part else message)
        self.part = part
