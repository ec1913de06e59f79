"""Edit a copy of a raw disk offline, through `debugfs -w` on the root partition: no mounts, no
loop devices, no root-only kernel features. What the mutation suite uses to break good images.
"""

from __future__ import annotations

import stat as statmod
import subprocess
import tempfile
from pathlib import Path

from validations.offline import Ext4Image, find_root, partitions


class DiskEditError(RuntimeError):
    """debugfs refused an edit (the message is debugfs's own)."""


class DiskEditor:
    """Writes into the root ext4 filesystem of a raw disk; each call is one debugfs run."""

    def __init__(self, raw: Path) -> None:
        self.raw = raw
        self.offset = find_root(raw)
        self._spec = f"{raw}?offset={self.offset}" if self.offset else str(raw)

    def reader(self) -> Ext4Image:
        """A fresh reader (no stale directory cache after edits)."""
        return Ext4Image(self.raw, self.offset)

    def _run(self, commands: list[str]) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as fh:
            fh.write("\n".join(commands) + "\n")
            fh.flush()
            proc = subprocess.run(
                ["debugfs", "-w", "-f", fh.name, self._spec], capture_output=True, text=True
            )
        errors = [
            line
            for line in proc.stderr.splitlines()
            if line.strip() and not line.startswith("debugfs ")
        ]
        if proc.returncode != 0 or errors:
            raise DiskEditError(f"debugfs {commands!r}: {'; '.join(errors) or proc.returncode}")

    def _owner_mode(self, path: str, kind: int, mode: int, uid: int, gid: int) -> list[str]:
        return [
            f'sif "{path}" mode 0{kind | mode:o}',
            f'sif "{path}" uid {uid}',
            f'sif "{path}" gid {gid}',
        ]

    def exists(self, path: str) -> bool:
        return self.reader().lexists(path)

    def read_text(self, path: str) -> str:
        return self.reader().read_text(path)

    def mkdir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        """mkdir -p, owned and moded as asked (existing directories are left alone)."""
        parts = [p for p in path.split("/") if p]
        current = ""
        for part in parts:
            current += "/" + part
            if not self.exists(current):
                self._run(
                    [
                        f'mkdir "{current}"',
                        *self._owner_mode(current, statmod.S_IFDIR, mode, uid, gid),
                    ]
                )

    def write(
        self, path: str, content: str | bytes, mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> None:
        """Create or replace a regular file (a symlink at `path` is replaced, not followed)."""
        data = content.encode() if isinstance(content, str) else content
        parent = path.rsplit("/", 1)[0] or "/"
        self.mkdir(parent)
        with tempfile.NamedTemporaryFile("wb") as local:
            local.write(data)
            local.flush()
            cmds = [f'rm "{path}"'] if self.exists(path) else []
            cmds += [f'write "{local.name}" "{path}"']
            cmds += self._owner_mode(path, statmod.S_IFREG, mode, uid, gid)
            self._run(cmds)

    def append(self, path: str, text: str) -> None:
        """Append to a file, keeping its owner and mode."""
        st = self.reader().stat(path)
        self.write(path, self.read_text(path) + text, statmod.S_IMODE(st.mode), st.uid, st.gid)

    def rm(self, path: str) -> None:
        self._run([f'rm "{path}"'])

    def rmdir(self, path: str) -> None:
        """Remove an empty folder."""
        self._run([f'rmdir "{path}"'])

    def symlink(self, path: str, target: str) -> None:
        if self.exists(path):
            self.rm(path)
        self._run([f'symlink "{path}" "{target}"'])

    def chmod(self, path: str, mode: int) -> None:
        st = self.reader().lstat(path)
        kind = statmod.S_IFMT(st.mode)
        self._run([f'sif "{path}" mode 0{kind | mode:o}'])

    def chown(self, path: str, uid: int, gid: int, mode: int) -> None:
        """Owner, group and permission bits of an existing file or folder (kind kept)."""
        kind = statmod.S_IFMT(self.reader().lstat(path).mode)
        self._run(self._owner_mode(path, kind, mode, uid, gid))

    def set_capabilities(self, path: str, value: bytes) -> None:
        """Write `value` as the file's security.capability attribute (what setcap stores)."""
        with tempfile.NamedTemporaryFile(suffix=".cap") as fh:
            fh.write(value)
            fh.flush()
            self._run([f'ea_set -f {fh.name} "{path}" security.capability'])

    def enable_unit(self, unit: str, content: str, target: str = "multi-user.target") -> None:
        """Install a systemd unit under /etc/systemd/system and enable it for `target`."""
        self.write(f"/etc/systemd/system/{unit}", content)
        wants = f"/etc/systemd/system/{target}.wants"
        self.mkdir(wants)
        self.symlink(f"{wants}/{unit}", f"/etc/systemd/system/{unit}")

    def unpartitioned_tail(self) -> int:
        """Bytes after the last partition (a GPT keeps ~17 KiB there for its backup header)."""
        parts = partitions(self.raw)
        end = max((p.offset + p.size for p in parts), default=self.raw.stat().st_size)
        return self.raw.stat().st_size - end

    def grow(self, extra_bytes: int) -> None:
        """Make the disk larger (not the filesystem): the declared size no longer holds."""
        with self.raw.open("r+b") as fh:
            fh.truncate(self.raw.stat().st_size + extra_bytes)
