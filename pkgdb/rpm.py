"""rpm's database, read offline: the header blobs of rpmdb.sqlite, decoded without rpm.

An installed package's header is stored as rpm exports it (lib/header.c, headerExport): two
big-endian int32 (`il` index entries, `dl` data bytes), `il` entries of four big-endian int32
(tag, type, offset into the data, count), then the data. Strings are NUL-terminated; integers
big-endian. Tag numbers and types are rpm's (include/rpm/rpmtag.h). The database is
/var/lib/rpm/rpmdb.sqlite (EL 9) or /usr/lib/sysimage/rpm/rpmdb.sqlite (Fedora, EL 10), table
`Packages (hnum, blob)`.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from typing import Any

from core.errors import ImageDefect
from core.ownership import scratch
from pkgdb.reader import ImageReader

NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH, SOURCERPM = 1000, 1001, 1002, 1003, 1014, 1022, 1044
FILEMODES, FILEDIGESTS, FILEFLAGS, FILEVERIFYFLAGS = 1030, 1035, 1037, 1045
RPMVERIFY_FILEDIGEST = 1  # a file whose %verify excludes its digest (logs, ghosts) is not compared
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
FILEDIGESTALGO = 5011
FILECAPS = 5010  # libcap text per file ("cap_setuid=ep"), "" for none
RPMFILE_CONFIG = 1
# rpm's PGPHASHALGO_* numbers; files without FILEDIGESTALGO are MD5 (rpm < 4.6)
DIGEST_ALGOS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
RPMDB_PATHS = ("/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite")

_CHAR, _INT8, _INT16, _INT32, _INT64, _STRING, _BIN, _STRING_ARRAY, _I18NSTRING = range(1, 10)
_INTS = {_CHAR: "B", _INT8: "B", _INT16: "H", _INT32: "I", _INT64: "Q"}


class HeaderError(ImageDefect):
    """A header blob that does not decode: the image's rpm database is damaged."""


def parse_header(blob: bytes) -> dict[int, Any]:
    """Tag -> value of a header blob: str, list[str], list[int] or bytes."""
    if len(blob) < 8:
        raise HeaderError(f"rpm header of {len(blob)} bytes: shorter than its intro")
    il, dl = struct.unpack_from(">ii", blob)
    start = 8 + 16 * il
    if il < 0 or dl < 0 or start + dl > len(blob):
        raise HeaderError(f"rpm header: {il} entries, {dl} data bytes do not fit {len(blob)} bytes")
    data = blob[start : start + dl]
    tags: dict[int, Any] = {}
    for i in range(il):
        tag, kind, offset, count = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if not 0 <= offset <= dl:
            raise HeaderError(f"rpm header: tag {tag} points outside its data ({offset})")
        tags[tag] = _value(data, kind, offset, count, tag)
    return tags


def _value(data: bytes, kind: int, offset: int, count: int, tag: int) -> Any:
    if kind in _INTS:
        fmt = f">{count}{_INTS[kind]}"
        if offset + struct.calcsize(fmt) > len(data):
            raise HeaderError(f"rpm header: tag {tag} runs past its data")
        return list(struct.unpack_from(fmt, data, offset))
    if kind == _BIN:
        return data[offset : offset + count]
    if kind in (_STRING, _STRING_ARRAY, _I18NSTRING):
        n = 1 if kind == _STRING else count
        strings, pos = [], offset
        for _ in range(n):
            end = data.find(b"\0", pos)
            if end < 0:
                raise HeaderError(f"rpm header: string of tag {tag} is not terminated")
            strings.append(data[pos:end].decode("utf-8", "surrogateescape"))
            pos = end + 1
        return strings[0] if kind == _STRING else strings
    return None  # RPM_NULL_TYPE and unknown types carry nothing the checks read


@dataclass(frozen=True)
class RpmFile:
    path: str
    mode: int
    digest: str  # hex, "" for directories, links and ghost files
    flags: int
    caps: str = ""

    @property
    def conffile(self) -> bool:
        return bool(self.flags & RPMFILE_CONFIG)


@dataclass(frozen=True)
class RpmPackage:
    name: str
    epoch: int | None
    version: str
    release: str
    arch: str
    sourcerpm: str
    license: str
    digest_algo: str
    files: tuple[RpmFile, ...]

    @property
    def evr(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{epoch}{self.version}-{self.release}"

    def __str__(self) -> str:
        return f"{self.name} {self.evr}"


def package_from_header(tags: dict[int, Any]) -> RpmPackage:
    """The fields the checks and the SBOM read from one decoded header."""
    names, dirs = tags.get(BASENAMES, []), tags.get(DIRNAMES, [])
    index = tags.get(DIRINDEXES, [])
    modes, digests = tags.get(FILEMODES, []), tags.get(FILEDIGESTS, [])
    flags, caps = tags.get(FILEFLAGS, []), tags.get(FILECAPS, [])
    verify = tags.get(FILEVERIFYFLAGS, [])
    if not len(index) == len(modes) == len(names) or (index and max(index) >= len(dirs)):
        raise HeaderError(f"rpm header of {tags.get(NAME)}: its file arrays disagree in length")
    files = tuple(
        RpmFile(
            path=dirs[index[i]] + names[i],
            mode=modes[i],
            digest=digests[i]
            if i < len(digests) and (i >= len(verify) or verify[i] & RPMVERIFY_FILEDIGEST)
            else "",
            flags=flags[i] if i < len(flags) else 0,
            caps=caps[i] if i < len(caps) else "",
        )
        for i in range(len(names))
    )
    algo = tags.get(FILEDIGESTALGO, [1])[0]
    return RpmPackage(
        name=tags.get(NAME, ""),
        epoch=tags[EPOCH][0] if EPOCH in tags else None,
        version=tags.get(VERSION, ""),
        release=tags.get(RELEASE, ""),
        arch=tags.get(ARCH, ""),
        sourcerpm=tags.get(SOURCERPM, ""),
        license=tags.get(LICENSE, ""),
        digest_algo=DIGEST_ALGOS.get(algo, f"algo-{algo}"),
        files=files,
    )


def read_rpmdb(reader: ImageReader) -> list[RpmPackage] | None:
    """The image's installed rpm packages, None when it has no sqlite rpm database."""
    where = next((p for p in RPMDB_PATHS if reader.exists(p)), None)
    if where is None:
        return None
    with scratch("xcpng-rpmdb") as tmp:
        folder = reader.export(where.rsplit("/", 1)[0], tmp)
        db = folder / "rpmdb.sqlite"
        try:
            con = sqlite3.connect(db)  # a throwaway copy: sqlite may replay its WAL into it
            try:
                blobs = [row[0] for row in con.execute("SELECT blob FROM Packages ORDER BY hnum")]
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise ImageDefect(f"{where}: not a readable rpm database ({exc})") from exc
    return [package_from_header(parse_header(b)) for b in blobs]
