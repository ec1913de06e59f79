"""Removal of secret values from anything the harness writes or prints."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
# URL query parameters that carry credentials, e.g. XAPI's session_id in an import URL.
_QUERY_SECRETS = re.compile(
    r"(?i)\b(session_id|password|secret|token|signature|X-Amz-Signature)=([^&\s\"']+)"
)
_OPAQUE = re.compile(r"OpaqueRef:[0-9a-fA-F-]{8,}")


class Redactor:
    """Callable that masks known secret values (longest first) and credential-like patterns."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 3 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, MASK)
        return _QUERY_SECRETS.sub(lambda m: f"{m.group(1)}={MASK}", text)


def redact_session_refs(text: str) -> str:
    """Mask XAPI OpaqueRefs (session ids are OpaqueRefs) in text bound for logs."""
    return _OPAQUE.sub("OpaqueRef:" + MASK, text)
