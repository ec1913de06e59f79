"""File capabilities: the `security.capability` attribute the kernel obeys at exec, decoded.

A file capability is privilege on disk like a setuid bit (cap_setuid+ep on an interpreter is a
root shell for everyone), so system-setuid judges both. The value is the kernel's struct
vfs_cap_data (include/uapi/linux/capability.h): a little-endian u32 `magic_etc` (revision in
the top byte, bit 0 = effective), then (permitted, inheritable) u32 pairs, one pair for
revision 1, two for revisions 2 and 3 (3 adds the namespace's root uid). Written by hand:
no library on PyPI decodes the attribute from bytes (python-prctl and libcap read live files).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

XATTR = "security.capability"
# capability numbers, include/uapi/linux/capability.h
NAMES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)  # fmt: skip
_REVISIONS = {0x01000000: 1, 0x02000000: 2, 0x03000000: 3}
_EFFECTIVE = 0x1


@dataclass(frozen=True)
class FileCaps:
    permitted: frozenset[str]
    inheritable: frozenset[str]
    effective: bool

    def names(self) -> frozenset[str]:
        return self.permitted | self.inheritable

    def __str__(self) -> str:
        parts = []
        if self.permitted:
            flags = "ep" if self.effective else "p"
            parts.append(",".join(f"cap_{n}" for n in sorted(self.permitted)) + "=" + flags)
        if self.inheritable:
            parts.append(",".join(f"cap_{n}" for n in sorted(self.inheritable)) + "+i")
        return " ".join(parts) or "(empty)"


class BadCapability(ValueError):
    """An attribute the kernel would not read as a capability set."""


def _names(bits: int) -> frozenset[str]:
    return frozenset(NAMES[i] if i < len(NAMES) else f"cap_{i}" for i in range(64) if bits >> i & 1)


def decode(value: bytes) -> FileCaps:
    """The capability sets of one attribute value (getcap's reading of it)."""
    if len(value) < 4:
        raise BadCapability(f"{len(value)} bytes, shorter than its header")
    (magic,) = struct.unpack_from("<I", value)
    revision = _REVISIONS.get(magic & 0xFF000000)
    pairs = {1: 1, 2: 2, 3: 2}.get(revision or 0, 0)
    if not pairs or len(value) < 4 + 8 * pairs:
        raise BadCapability(f"revision {magic >> 24:#x}, {len(value)} bytes")
    words = struct.unpack_from(f"<{2 * pairs}I", value, 4)
    permitted = sum(words[2 * i] << (32 * i) for i in range(pairs))
    inheritable = sum(words[2 * i + 1] << (32 * i) for i in range(pairs))
    return FileCaps(_names(permitted), _names(inheritable), bool(magic & _EFFECTIVE))


_CAP_NAME = re.compile(r"\bcap_([a-z_]+)\b", re.IGNORECASE)
_ALL = re.compile(r"(?:^|[\s,\"'])all[=+]", re.IGNORECASE)


def text_names(spec: str) -> frozenset[str]:
    """Capability names in libcap's text form (`cap_net_raw+ep`, `cap_a,cap_b=ep`, `all=ep`),
    as maintainer scripts pass them to setcap."""
    if _ALL.search(spec):
        return frozenset(NAMES)
    return frozenset(m.lower() for m in _CAP_NAME.findall(spec))
