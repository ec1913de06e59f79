"""CloudStack's request signature, checked as ApiServer.verifyRequest checks it (written from
Apache CloudStack's server/src/main/java/com/cloud/api/ApiServer.java and DateUtil.java).

- the parameter names are sorted as given (Java's String order, case-sensitive); `signature` is
  left out, matched case-insensitively, as are `apiKey`, `signatureVersion` and `expires`;
- each value (the first one of a repeated name) is encoded with java.net.URLEncoder in UTF-8,
  which keeps only ASCII letters, digits and `.-*_` and turns a space into `+`, then `+` becomes
  `%20`; the pairs are joined with `&` and the whole string is lower-cased;
- HMAC-SHA1 with the secret key, base64: compared in constant time with the `signature` given;
- with signatureVersion=3, `expires` is required, parsed by DateUtil.parseTZDateString's formats,
  and a request whose expiry has passed is refused; when the server enforces timestamps
  (enforce.post.requests.and.timestamps) an expiry more than 15 minutes ahead is refused too, and
  so is a request without signatureVersion=3.

Every refusal is the same 401 to the client ("unable to verify user credentials and/or request
signature"); the reason is kept for the twin's log, as CloudStack logs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timedelta

UNVERIFIED = "unable to verify user credentials and/or request signature"
_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_"
THRESHOLD = timedelta(minutes=15)
# DateUtil.parseFormats, as Python patterns: ISO_OFFSET_DATE_TIME, "yyyy-MM-dd'T'HH:mm:ssZ",
# ISO_INSTANT, then the forms with microseconds and the legacy "yyyy-MM-dd'T'HH:mm:ss'Z'Z".
_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
)


def java_urlencode(value: str) -> str:
    """java.net.URLEncoder.encode(value, "UTF-8").replaceAll("\\\\+", "%20"): every UTF-8 byte
    but ASCII letters, digits and `.-*_` percent-encoded in upper case, a space as `%20`
    (Python's quote would keep `~`, which Java encodes)."""
    out = []
    for byte in value.encode("utf-8"):
        char = chr(byte)
        out.append(char if char in _SAFE else f"%{byte:02X}")
    return "".join(out)


def unsigned_request(params: dict[str, str]) -> str:
    pairs = [
        f"{name}={java_urlencode(params[name])}"
        for name in sorted(params)
        if name.lower() != "signature"
    ]
    return "&".join(pairs)


def sign(params: dict[str, str], secret: str) -> str:
    digest = hmac.new(
        secret.encode(), unsigned_request(params).lower().encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def parse_expires(text: str) -> datetime | None:
    t = text.strip()
    legacy = re.fullmatch(r"(.*)Z([+-]\d{4})", t)  # "yyyy-MM-dd'T'HH:mm:ss'Z'Z"
    if legacy:
        t = legacy.group(1) + legacy.group(2)
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    for fmt in _FORMATS:
        try:
            return datetime.strptime(t, fmt)
        except ValueError:
            continue
    return None


def _get(params: dict[str, str], name: str) -> str | None:
    for key, value in params.items():
        if key.lower() == name.lower():
            return value
    return None


def verify(
    params: dict[str, str],
    secrets: dict[str, str],
    now: datetime,
    enforce_timestamps: bool = False,
) -> str | None:
    """None if the request is signed by a known key and in date; else why not (for the log)."""
    signature, api_key = _get(params, "signature"), _get(params, "apiKey")
    if signature is None or api_key is None:
        return "missing signature or apiKey"
    if _get(params, "signatureVersion") == "3":
        expires = _get(params, "expires")
        if expires is None:
            return "missing Expires parameter"
        when = parse_expires(expires)
        if when is None:
            return f"incorrect date format for Expires parameter: {expires!r}"
        if when < now:
            return f"request expired at {expires}"
        if enforce_timestamps and when > now + THRESHOLD:
            return "expiration parameter is set for too long"
    elif enforce_timestamps:
        return "signature version must be 3, with the Expires parameter"
    secret = secrets.get(api_key)
    if secret is None:
        return "apiKey does not map to a valid user"
    if not hmac.compare_digest(signature, sign(params, secret)):
        return "signature does not match the computed one"
    return None
