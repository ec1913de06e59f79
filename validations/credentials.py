"""What a credential looks like, and where a golden image must hold none.

A key or password baked into a template is a back door into every clone made from it. The
scanner works on a copy of the image's trees exported offline (validations/offline.py), never
following a link out of the copy, and returns findings as `path: what` lines, never the secret.
Pure, so each kind is unit-tested on files made in a temporary folder.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

MAX_SCAN_BYTES = 16 * 1024 * 1024  # larger files are not credentials (and are not read)

AUTHORIZED_KEYS = (".ssh/authorized_keys", ".ssh/authorized_keys2")
# Files that hold credentials by their very name, relative to a home folder.
CREDENTIAL_FILES = (
    ".netrc",
    ".aws/credentials",
    ".docker/config.json",
    ".git-credentials",
    ".pgpass",
    ".my.cnf",
    ".s3cfg",
    ".boto",
    ".vault-token",
    ".kube/config",
    ".npmrc",
    ".pypirc",
    ".config/gcloud/credentials.db",
    ".config/gcloud/application_default_credentials.json",
    ".azure/accessTokens.json",
    ".azure/msal_token_cache.json",
    ".terraform.d/credentials.tfrc.json",
    ".config/gh/hosts.yml",
    ".config/hub",
    ".gnupg/private-keys-v1.d",
    ".gnupg/secring.gpg",
)

PRIVATE_KEY = re.compile(
    rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d+:"
)
# crypt(3) hashes: MD5, bcrypt, SHA-256/512, scrypt, yescrypt, gost-yescrypt
PASSWORD_HASH = re.compile(rb"\$(?:1|2[abxy]|5|6|7|y|gy)\$[./A-Za-z0-9$,=]{20,}")
TOKENS = (
    ("an AWS access key id", re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("an AWS secret key", re.compile(rb"(?i)aws_secret_access_key\s*[=:]\s*\S{16,}")),
    ("a GitHub token", re.compile(rb"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})")),
    ("a Slack token", re.compile(rb"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    (
        "a password assignment",
        re.compile(
            rb"(?i)(?<![a-z])(?:password|passwd|secret|api[_-]?key|token)[\"']?\s*[:=]\s*"
            rb"[\"']?(?![*x]{3,})[^\s\"'*]{6,}"
        ),
    ),
)


def regular_files(root: Path) -> Iterator[Path]:
    """Regular files under a local copy, links never followed (they point into the image)."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_SCAN_BYTES:
                yield path


def image_path(copy_root: Path, local: Path, image_top: str) -> str:
    """The path inside the image of a file of the exported copy of `image_top`."""
    rel = local.relative_to(copy_root).as_posix()
    return f"{image_top.rstrip('/')}/{rel}" if rel != "." else image_top


def private_keys(data: bytes) -> bool:
    return bool(PRIVATE_KEY.search(data))


def secrets_in(data: bytes, hashes: bool = True) -> list[str]:
    """What kinds of secret `data` holds (password hashes, tokens, password assignments)."""
    found = []
    if hashes and PASSWORD_HASH.search(data):
        found.append("a password hash")
    found += [label for label, rx in TOKENS if rx.search(data)]
    return found


def account_rows(text: str) -> dict[str, list[str]]:
    """passwd/shadow/group/gshadow rows by name (the first field)."""
    rows = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#") and ":" in line:
            fields = line.split(":")
            rows[fields[0]] = fields
    return rows


def password_problem(field: str, kind: str) -> str | None:
    """What is wrong with a password field of an account file, None when it lets nobody in:
    locked (`!`, `*`), `x` (shadowed) in passwd and group, empty only in gshadow."""
    if field.startswith(("!", "*")):
        return None
    if field == "x" and kind in ("passwd", "group"):
        return None
    if field == "":
        return None if kind == "gshadow" else "an empty password (no password needed)"
    return "a usable password hash"
