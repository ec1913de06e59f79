"""Credentials left in the image, read offline from the artifact for every family.

A key or password in a golden image is a back door into every clone. cloud-init regenerates
host keys and creates the seed's user on the clone, so none of this shows on a booted clone's
usual checks: the artifact itself is read (validations/offline.py), copied out tree by tree and
scanned without following links (validations/credentials.py).
"""

from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path

from core.checks import check
from validations import credentials as cred
from validations.offline import OfflineImage
from validations.test_hygiene import INSTALLER_FILES

# Trees scanned for private keys and tokens (host keys are hygiene-host-keys' concern).
KEY_TREES = ("/etc", "/opt", "/srv", "/usr/local", "/var/lib", "/var/backups", "/var/spool",
             "/var/mail", "/var/log", "/tmp", "/var/tmp")  # fmt: skip
KEY_SKIP = ("/etc/ssh/ssh_host_", "/var/lib/dpkg/", "/var/lib/apt/", "/var/lib/rpm/",
            "/var/lib/dnf/", "/var/backups/dpkg.")  # fmt: skip
# Trees scanned for password hashes and secrets too: logs, temp files, installer leftovers.
SECRET_TREES = ("/var/log", "/tmp", "/var/tmp")
# The account files and their backups: shadow-utils keeps the previous file as `<file>-`, and
# Debian's daily job copies them to /var/backups/*.bak.
ACCOUNT_FILES = {"passwd": "/etc/passwd", "shadow": "/etc/shadow", "gshadow": "/etc/gshadow"}
BACKUPS = {kind: (f"{live}-", f"/var/backups/{kind}.bak") for kind, live in ACCOUNT_FILES.items()}
SYSTEM_HOMES = ("/", "/nonexistent", "/dev", "/dev/null", "/bin", "/sbin", "/usr/sbin", "/usr/bin")


def homes(image: OfflineImage) -> list[str]:
    """Every home folder in the image: /root, /home/*, and each account's home that exists."""
    found = ["/root"]
    if image.exists("/home"):
        found += [f"/home/{n}" for n in image.listdir("/home")]
    for fields in cred.account_rows(image.read_text("/etc/passwd")).values():
        home = posixpath.normpath(fields[5]) if len(fields) > 5 and fields[5] else ""
        if home and home not in SYSTEM_HOMES and home not in found:
            found.append(home)
    return [h for h in found if image.exists(h) and image.stat(h).is_dir]


def _scan(image: OfflineImage, top: str, workdir: Path) -> list[tuple[str, bytes]]:
    """(image path, content) of every regular file under `top` in the image."""
    if not image.exists(top):
        return []
    copy = image.export(top, workdir / f"t{len(list(workdir.iterdir()))}")
    out = []
    for local in cred.regular_files(copy):
        out.append((cred.image_path(copy, local, top), local.read_bytes()))
    return out


def credential_findings(image: OfflineImage) -> list[str]:
    """Every credential left in the image, one `path: what` line each."""
    found: list[str] = []
    with tempfile.TemporaryDirectory(prefix="creds-") as tmp:
        work = Path(tmp)
        home_files: list[tuple[str, bytes]] = []
        for home in homes(image):
            for rel in cred.AUTHORIZED_KEYS:
                path = f"{home}/{rel}"
                if image.lexists(path):
                    found.append(f"{path}: authorized keys (a login into every clone)")
            for rel in cred.CREDENTIAL_FILES:
                if image.lexists(f"{home}/{rel}"):
                    found.append(f"{home}/{rel}: a credential file")
            if home == "/root" or home.startswith("/home/"):  # login homes: read every file
                home_files += _scan(image, home, work)
        seen = {line.split(":", 1)[0] for line in found}
        for path, data in home_files:
            if path in seen:
                continue
            if posixpath.basename(path).startswith("authorized_keys"):
                found.append(f"{path}: authorized keys (a login into every clone)")
            elif cred.private_keys(data):
                found.append(f"{path}: a private key")
            elif what := cred.secrets_in(data):
                found.append(f"{path}: {', '.join(what)}")
        for top in KEY_TREES:
            for path, data in _scan(image, top, work):
                if path.startswith(KEY_SKIP):
                    continue
                if cred.private_keys(data):
                    found.append(f"{path}: a private key")
                elif top in SECRET_TREES and (what := cred.secrets_in(data)):
                    found.append(f"{path}: {', '.join(what)}")
        for leftover in INSTALLER_FILES:
            for path, data in _scan(image, leftover, work):
                if what := cred.secrets_in(data):
                    found.append(f"{path}: {', '.join(what)} (installer leftover)")
    return sorted(set(found))


@check(
    "hygiene-credentials",
    "no authorized_keys, private key, credential file, password hash or token in the image",
)
def test_credentials(image: OfflineImage) -> None:
    assert image.exists("/etc/passwd"), "no /etc/passwd: is this the root filesystem?"
    found = credential_findings(image)
    assert not found, "credentials in the image:\n" + "\n".join(found)


def backup_findings(image: OfflineImage) -> list[str]:
    """What the account files' backups hold that the live files do not, usable passwords in
    them, and modes wider than the live file's."""
    found = []
    for kind, live_path in ACCOUNT_FILES.items():
        if not image.exists(live_path):
            continue
        live = cred.account_rows(image.read_text(live_path))
        live_st = image.stat(live_path)
        for backup in BACKUPS[kind]:
            if not image.exists(backup):
                continue
            st = image.stat(backup)
            if st.perms & ~live_st.perms:
                found.append(
                    f"{backup}: mode {st.perms:04o} is wider than {live_path}'s {live_st.perms:04o}"
                )
            # root:root is stricter than the live file's root:shadow, and CIS allows it
            if st.uid != 0 or st.gid not in (live_st.gid, 0):
                found.append(
                    f"{backup}: owner {st.uid}:{st.gid}, {live_path} is {live_st.uid}:{live_st.gid}"
                )
            rows = cred.account_rows(image.read_text(backup))
            extra = sorted(set(rows) - set(live))
            if extra:
                found.append(f"{backup}: accounts {live_path} no longer has: {', '.join(extra)}")
            for name, fields in rows.items():
                problem = cred.password_problem(fields[1] if len(fields) > 1 else "", kind)
                if problem:
                    found.append(f"{backup}: {name} has {problem}")
    return found


@check(
    "hygiene-account-backups",
    "account file backups (/etc/shadow- ...) hold no removed account, no usable password, "
    "and are no more readable than the live files",
)
def test_account_backups(image: OfflineImage) -> None:
    assert image.exists("/etc/shadow"), "no /etc/shadow: is this the root filesystem?"
    found = backup_findings(image)
    assert not found, "account file backups leak:\n" + "\n".join(found)
