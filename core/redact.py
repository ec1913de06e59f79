"""The one redactor: every secret in force is masked the same way wherever text leaves us.

Build logs, JUnit files, metadata, exception messages, XAPI errors and terminal lines all pass
through a `Redactor`. It masks each secret and the forms it takes once encoded (URL, JSON,
XML), longest first, plus credential-looking URL parameters (a session id in an import URL, an
S3 presigned signature). Secrets shorter than MIN_LENGTH cannot be masked without shredding
the text around them, so settings refuse them instead (core/settings.py).
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 4
_QUERY_SECRETS = re.compile(
    r"(?i)\b(session_id|password|secret|token|signature|X-Amz-Signature|X-Amz-Credential|"
    r"X-Amz-Security-Token)=([^&\s\"'<>]+)"
)


def _forms(secret: str) -> set[str]:
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        html.escape(secret, quote=True),
    }


class Redactor:
    """Callable: `redactor(text)` returns text with every known secret masked."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._forms: list[str] = []
        self._bforms: list[bytes] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        """Mask `secret` from now on (e.g. a session id XAPI just handed out)."""
        if not secret or len(secret) < MIN_LENGTH:
            return
        with self._lock:
            forms = set(self._forms) | _forms(secret)
            self._forms = sorted(forms, key=len, reverse=True)
            self._bforms = [f.encode() for f in self._forms]

    def __call__(self, text: str) -> str:
        for f in self._forms:
            if f in text:
                text = text.replace(f, MASK)
        return _QUERY_SECRETS.sub(lambda m: f"{m.group(1)}={MASK}", text)

    def data(self, value: bytes) -> bytes:
        for f in self._bforms:
            if f in value:
                value = value.replace(f, MASK.encode())
        return value

    def file(self, src: Path, dst: Path) -> None:
        """Copy src to dst line by line, redacted (memory bounded by the longest line)."""
        with src.open("rb") as fin, dst.open("wb") as fout:
            for line in fin:
                fout.write(self.data(line))

    def contains_secret(self, value: bytes) -> bool:
        return any(f in value for f in self._bforms)
