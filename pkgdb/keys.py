"""The keys apt would trust for a source, taken from the image itself.

A source's `signed-by` names its keyrings (paths in the image) or carries a key block inline;
without it apt trusts /etc/apt/trusted.gpg and every keyring in /etc/apt/trusted.gpg.d. gpgv
reads binary keyrings only, so ASCII-armored ones (`.asc`) are de-armored here, as apt does.
A `signed-by` fingerprint restricts which trusted key may sign; gpgv then gets the trusted
keyrings (the fingerprint restriction itself is not applied).
"""

from __future__ import annotations

import base64
import binascii
import re

from core.errors import ImageDefect
from pkgdb.reader import ImageReader
from pkgdb.sources import APT_DIR, AptSource

ARMOR = re.compile(
    rb"-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n(.*?)-----END PGP PUBLIC KEY BLOCK-----", re.S
)


def dearmor(data: bytes) -> bytes:
    """Binary OpenPGP packets of every armored key block in `data`; binary input as is."""
    blocks = ARMOR.findall(data)
    if not blocks:
        return data
    out = b""
    for block in blocks:
        lines = [ln.strip() for ln in block.split(b"\n")]
        if b"" in lines:  # armor headers ("Comment: ...") end at the first empty line
            lines = lines[lines.index(b"") + 1 :]
        lines = [ln for ln in lines if ln and not ln.startswith(b"=")]  # "=CRC24" is no key
        try:
            out += base64.b64decode(b"".join(lines), validate=True)
        except binascii.Error as exc:
            raise ImageDefect(f"an armored key block does not decode: {exc}") from exc
    return out


class KeyStore:
    """The keys the image trusts, read from it once per source kind."""

    def __init__(self, reader: ImageReader) -> None:
        self.reader = reader
        self._trusted: list[tuple[str, bytes]] | None = None

    def trusted(self) -> list[tuple[str, bytes]]:
        """(path, keyring) of every key apt trusts for sources without signed-by."""
        if self._trusted is None:
            reader = self.reader
            paths = [f"{APT_DIR}/trusted.gpg"] if reader.exists(f"{APT_DIR}/trusted.gpg") else []
            folder = f"{APT_DIR}/trusted.gpg.d"
            if reader.exists(folder):
                names = reader.listdir(folder)
                paths += [f"{folder}/{n}" for n in names if n.endswith((".gpg", ".asc"))]
            self._trusted = [(p, dearmor(reader.read_bytes(p))) for p in paths]
        return self._trusted

    def for_source(self, source: AptSource) -> list[tuple[str, bytes]]:
        """(where, keyring) of the keys that may sign `source`'s InRelease, as the image says."""
        inline = [s for s in source.signed_by if "BEGIN PGP PUBLIC KEY BLOCK" in s]
        if inline:
            return [(f"{source.origin} (inline Signed-By)", dearmor(inline[0].encode()))]
        paths = [s for s in source.signed_by if s.startswith("/")]
        if not paths:
            return self.trusted()
        missing = [p for p in paths if not self.reader.exists(p)]
        if missing:
            raise ImageDefect(f"{source.origin}: signed-by keyring {', '.join(missing)} is missing")
        return [(p, dearmor(self.reader.read_bytes(p))) for p in paths]
