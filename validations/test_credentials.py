"""Credentials left in the image, read offline from the artifact for every family.

A key or password in a golden image is a back door into every clone. cloud-init regenerates
host keys and creates the seed's user on the clone, so none of this shows on a booted clone's
usual checks: the artifact itself is read (validations/offline.py) and every file its packages
do not vouch for is scanned (validations/credscan.py).
"""

from __future__ import annotations

from core.checks import check
from validations import credentials as cred
from validations.credscan import scan
from validations.offline import OfflineImage

# The account files and their backups: shadow-utils keeps the previous file as `<file>-`, and
# Debian's daily job copies them to /var/backups/*.bak.
ACCOUNT_FILES = {"passwd": "/etc/passwd", "shadow": "/etc/shadow", "gshadow": "/etc/gshadow"}
BACKUPS = {kind: (f"{live}-", f"/var/backups/{kind}.bak") for kind, live in ACCOUNT_FILES.items()}


@check(
    "hygiene-credentials",
    "no authorized_keys, private key, credential file, token, password or password hash in any "
    "file of the image its packages do not vouch for",
)
def test_credentials(image: OfflineImage) -> None:
    assert image.exists("/etc/passwd"), "no /etc/passwd: is this the root filesystem?"
    found = scan(image)
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
