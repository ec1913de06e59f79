"""An inode as the offline readers report it (debugfs and libguestfs alike)."""

from __future__ import annotations

import stat as statmod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stat:
    """What the checks need of an inode: full st_mode (type and permissions), owner, size."""

    mode: int
    uid: int
    gid: int
    size: int
    ino: int = field(default=0, compare=False)  # debugfs's inode number; 0 when unknown

    @property
    def perms(self) -> int:
        return statmod.S_IMODE(self.mode)

    @property
    def is_dir(self) -> bool:
        return statmod.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return statmod.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        return statmod.S_ISLNK(self.mode)
