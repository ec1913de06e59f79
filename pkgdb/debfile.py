"""What a .deb ships: the mode of each member of its data archive, and its maintainer scripts.

A .deb is an ar archive (python-debian's ArFile) holding control.tar.* and data.tar.* (xz, zst
or gz; zstd through the `zstandard` module, the rest through tarfile). Modes are read from the
tar headers, which is what dpkg gives the files it unpacks. Members are named as the package
names them (./bin/su); pkgdb.paths maps them to the image's real paths.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import shlex
import tarfile
from pathlib import Path

import zstandard
from debian.arfile import ArError, ArFile

from core.errors import InfrastructureError

SCRIPTS = ("preinst", "postinst")
_CHMOD = re.compile(r"\bchmod\s+(?:-[a-zA-Z]+\s+)*(\S+)\s+(.+)")
_SETCAP = re.compile(r"\bsetcap\s+(.+)")
SPECIAL = 0o6000  # setuid and setgid


def _tar(deb: Path, prefix: str) -> tarfile.TarFile:
    try:
        with deb.open("rb") as fh:
            archive = ArFile(fileobj=fh)
            name = next((n for n in archive.getnames() if n.startswith(prefix)), None)
            if name is None:
                raise InfrastructureError(f"{deb}: no {prefix}* member: not a .deb")
            data = archive.getmember(name).read()
    except ArError as exc:
        raise InfrastructureError(f"{deb}: not a .deb ({exc})") from exc
    return tarfile.open(fileobj=io.BytesIO(_decompress(name, data)), mode="r:")


def _decompress(name: str, data: bytes) -> bytes:
    """The member whole, decompressed once (tarfile seeking in a compressed stream decompresses
    it again and again)."""
    if name.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    return data


def _path(name: str) -> str:
    """A tar member name (./usr/bin/su) as an absolute path."""
    rel = name[2:] if name.startswith("./") else name
    return "/" + rel.strip("/") if rel not in ("", ".") else "/"


def member_modes(deb: Path) -> dict[str, int]:
    """Permission bits (setuid, setgid and sticky included) of every data member, by path."""
    with _tar(deb, "data.tar") as tar:
        return {_path(m.name): m.mode & 0o7777 for m in tar.getmembers()}


def maintainer_scripts(deb: Path) -> dict[str, bytes]:
    """The .deb's preinst/postinst, as shipped (what dpkg copies into its info folder)."""
    out = {}
    with _tar(deb, "control.tar") as tar:
        for m in tar.getmembers():
            name = m.name.rsplit("/", 1)[-1]
            if name in SCRIPTS and m.isfile() and (fh := tar.extractfile(m)) is not None:
                out[name] = fh.read()
    return out


def _special_bits(mode: str) -> int:
    """The setuid/setgid bits a chmod mode argument sets: octal (2755) or symbolic (u+s)."""
    if re.fullmatch(r"[0-7]{3,4}", mode):
        return int(mode, 8) & SPECIAL
    bits = 0
    for who, op, perms in re.findall(r"([ugoa]*)([-+=])([rwxXst]*)", mode):
        if op in ("+", "=") and "s" in perms:
            if not who or set(who) & set("ua"):
                bits |= 0o4000
            if not who or set(who) & set("ga"):
                bits |= 0o2000
    return bits


def script_grants(script: bytes) -> dict[str, int]:
    """Paths a maintainer script makes setuid/setgid with chmod, and which of the two bits
    (Debian's openssh-client postinst: `chmod 2755 /usr/bin/ssh-agent`)."""
    grants: dict[str, int] = {}
    for line in script.decode("utf-8", "replace").splitlines():
        m = _CHMOD.search(line.split("#", 1)[0])
        if not m or not (bits := _special_bits(m.group(1))):
            continue
        try:
            words = shlex.split(m.group(2))
        except ValueError:
            words = m.group(2).split()
        for word in words:
            path = word.strip("\"'").split("$DPKG_ROOT", 1)[-1]
            if path.startswith("/"):
                grants[path] = grants.get(path, 0) | bits
    return grants


def script_setcaps(script: bytes) -> dict[str, str]:
    """Paths a maintainer script gives file capabilities with setcap, and the capability text
    it passes (iproute2's postinst: `setcap "cap_net_admin...=ep" /bin/ip`, when asked to).
    A grant behind a condition counts: the image may have answered either way."""
    grants: dict[str, str] = {}
    for line in script.decode("utf-8", "replace").splitlines():
        m = _SETCAP.search(line.split("#", 1)[0])
        if not m:
            continue
        try:
            words = shlex.split(m.group(1))
        except ValueError:
            words = m.group(1).split()
        args: list[str] = []
        skip = False
        for raw in words:
            if raw in ("&&", "||", "|", "then") or raw.startswith((">", "2>", ";")):
                break
            last, word = raw.endswith(";"), raw.rstrip(";")
            if skip:
                skip = False
            elif word == "-n":  # its value is the namespace's root uid
                skip = True
            elif word == "-r":  # removes: grants nothing
                args = []
                break
            elif not word.startswith("-"):
                args.append(word)
            if last:
                break
        for spec, named in zip(args[0::2], args[1::2], strict=False):
            path = named.split("$DPKG_ROOT", 1)[-1]
            if path.startswith("/"):
                grants[path] = f"{grants[path]} {spec}" if path in grants else spec
    return grants
