"""rpm header blobs built byte by byte, as rpm's headerExport writes them (for pkgdb's tests:
no rpm tool or EL image here)."""

from __future__ import annotations

import hashlib
import struct

from pkgdb import rpm

STRING, INT16, INT32, BIN, STRING_ARRAY = 6, 3, 4, 7, 8


def header(tags: dict[int, tuple[int, object]]) -> bytes:
    """An rpm header blob as rpm's headerExport writes it: il, dl, index, data (big endian),
    with a leading immutable-region entry like real headers carry."""
    index, data = [], b""
    entries = [(63, (BIN, b"\0" * 16)), *sorted(tags.items())]
    for tag, (kind, value) in entries:
        align = {INT16: 2, INT32: 4}.get(kind, 1)
        data += b"\0" * (-len(data) % align)
        offset = len(data)
        if kind == STRING:
            blob, count = str(value).encode() + b"\0", 1
        elif kind == STRING_ARRAY:
            items = list(value)  # type: ignore[call-overload]
            blob, count = b"".join(s.encode() + b"\0" for s in items), len(items)
        elif kind in (INT16, INT32):
            items = list(value)  # type: ignore[call-overload]
            blob, count = (
                struct.pack(f">{len(items)}{'H' if kind == INT16 else 'I'}", *items),
                len(items),
            )
        else:
            blob, count = bytes(value), len(bytes(value))  # type: ignore[call-overload]
        data += blob
        index.append(struct.pack(">iiii", tag, kind, offset, count))
    return struct.pack(">ii", len(index), len(data)) + b"".join(index) + data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shadow_utils() -> bytes:
    return header({
        rpm.NAME: (STRING, "shadow-utils"),
        rpm.EPOCH: (INT32, [2]),
        rpm.VERSION: (STRING, "4.9"),
        rpm.RELEASE: (STRING, "12.el9"),
        rpm.ARCH: (STRING, "x86_64"),
        rpm.LICENSE: (STRING, "BSD and GPLv2+"),
        rpm.SOURCERPM: (STRING, "shadow-utils-4.9-12.el9.src.rpm"),
        rpm.DIRNAMES: (STRING_ARRAY, ["/usr/bin/", "/etc/"]),
        rpm.BASENAMES: (STRING_ARRAY, ["passwd", "chage", "login.defs"]),
        rpm.DIRINDEXES: (INT32, [0, 0, 1]),
        rpm.FILEMODES: (INT16, [0o104755, 0o100755, 0o100644]),
        rpm.FILEDIGESTS: (STRING_ARRAY, [sha256(b"passwd"), sha256(b"chage"), sha256(b"defs")]),
        rpm.FILEFLAGS: (INT32, [0, 0, rpm.RPMFILE_CONFIG]),
        rpm.FILEDIGESTALGO: (INT32, [8]),
    })  # fmt: skip
