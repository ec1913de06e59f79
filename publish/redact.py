"""Secret redaction for every text the publisher writes or prints (defence in depth)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

MASK = "***"


class Redactor:
    """Replaces every known secret (and its URL- and JSON-encoded forms) by `***`."""

    def __init__(self, secrets: Iterable[str]):
        forms: set[str] = set()
        for s in secrets:
            if s and len(s) >= 4:  # a 1-3 character "secret" would shred the text; skip it
                forms.update({s, quote(s, safe=""), quote_plus(s), json.dumps(s)[1:-1]})
        self._forms = sorted(forms, key=len, reverse=True)
        self._bforms = [f.encode() for f in self._forms]

    def text(self, value: str) -> str:
        for f in self._forms:
            value = value.replace(f, MASK)
        return value

    def data(self, value: bytes) -> bytes:
        for f in self._bforms:
            value = value.replace(f, MASK.encode())
        return value

    def file(self, src: Path, dst: Path) -> None:
        """Copy src to dst line by line, redacted (memory bounded by the longest line)."""
        with src.open("rb") as fin, dst.open("wb") as fout:
            for line in fin:
                fout.write(self.data(line))

    def contains_secret(self, value: bytes) -> bool:
        return any(f in value for f in self._bforms)
