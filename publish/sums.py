"""`SHA256SUMS`: every published file of a build folder, in `sha256sum`'s own format, so that
`sha256sum -c SHA256SUMS` checks a downloaded folder and one signature covers all of it.

`<64 hex>  <name>` per line, names sorted, plain names inside the folder (no path); metadata.json
is listed too (it is written after SHA256SUMS, as the folder's completion mark, and its bytes
are known before). Parsing is strict: a line that is not of that form refuses the whole file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

SUMS = "SHA256SUMS"
SUMS_SIG = "SHA256SUMS.sig"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *]([^/\s][^/]*)$")


class SumsError(ValueError):
    """A SHA256SUMS that is not in sha256sum's format."""


def render(digests: Mapping[str, str]) -> bytes:
    """The file listing `digests` (name -> sha256 hex)."""
    for name in digests:
        if "/" in name or "\n" in name or not name.strip():
            raise ValueError(f"not a plain file name for {SUMS}: {name!r}")
    return "".join(f"{digests[n]}  {n}\n" for n in sorted(digests)).encode()


def parse(data: bytes) -> dict[str, str]:
    """name -> sha256 of a SHA256SUMS file; SumsError on any malformed line or repeated name."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SumsError(f"{SUMS} is not UTF-8 text") from None
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _LINE.match(line)
        if m is None:
            raise SumsError(f"{SUMS} line {n} is not '<sha256>  <name>': {line[:80]!r}")
        if m.group(2) in out:
            raise SumsError(f"{SUMS} lists {m.group(2)} twice")
        out[m.group(2)] = m.group(1)
    if not out:
        raise SumsError(f"{SUMS} lists no file")
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
