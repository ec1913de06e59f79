"""One scan for credentials over every file of an image that its packages do not vouch for.

The image's package database decides what is skipped: a file a package owns whose content still
has the digest the database records (dpkg's md5sums and conffile hashes, rpm's file digests) is
the distribution's, and is not read for secrets; Python's compiled `__pycache__/*.pyc` of such
a file is skipped too when its header names the source's size (Python regenerates it from
the source). Everything else on the root filesystem is scanned: changed package files, files
no package owns (/etc/skel included), and the files inside the archives among them
(validations/archives.py). Besides the content, names count: an `authorized_keys` anywhere, a
credential file by name (.netrc, .aws/credentials ...) in a home or /etc/skel, and debconf's
password store holding an answer.

Not read: SSH host keys (hygiene-host-keys' concern), password hashes in the account databases
(system-shadow-locked and hygiene-account-backups judge those), files larger than
MAX_SCAN_BYTES that no package owns (a kernel's initramfs). Every file is streamed from the
image in one pass (OfflineImage.read_files). Findings are `path: what`, never the secret.
"""

from __future__ import annotations

import fnmatch
import posixpath
import struct
from collections.abc import Iterator

from validations import archives
from validations import credentials as cred
from validations.homes import homes
from validations.offline import OfflineImage
from validations.packagedb import package_files, verify
from validations.test_hygiene import INSTALLER_FILES

HOST_KEYS = "/etc/ssh/ssh_host_"
# The account databases: their hashes are the account checks' concern, not a leak.
ACCOUNT_DATABASES = frozenset(
    {"/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-"}
    | {f"/var/backups/{kind}.bak" for kind in ("passwd", "shadow", "gshadow")}
)
DEBCONF_PASSWORDS = ("/var/cache/debconf/passwords.dat", "/var/cache/debconf/passwords.dat-old")


def name_findings(image: OfflineImage, paths: list[str]) -> list[str]:
    """Credentials by name: authorized keys anywhere, credential files in homes and skel."""
    found = [
        f"{p}: authorized keys (a login into every clone)"
        for p in paths
        if posixpath.basename(p) in ("authorized_keys", "authorized_keys2")
    ]
    for home in homes(image):
        found += [
            f"{home}/{rel}: a credential file"
            for rel in cred.CREDENTIAL_FILES
            if image.lexists(f"{home}/{rel}")
        ]
    return found


def system_file_findings(path: str, data: bytes) -> Iterator[str]:
    """A credential file outside the homes (SYSTEM_CREDENTIAL_FILES) with any line that is not
    a comment: its format makes every such line a secret."""
    if any(fnmatch.fnmatchcase(path, pattern) for pattern in cred.SYSTEM_CREDENTIAL_FILES):
        lines = data.decode("utf-8", "replace").splitlines()
        if any(x.strip() and not x.lstrip().startswith(("#", ";")) for x in lines):
            yield f"{path}: a credential file"


def compiled_from_untouched(path: str, data: bytes, untouched: dict[str, int]) -> bool:
    """A `__pycache__/<name>.<tag>.pyc` whose source is an untouched package file of the size
    its header records (PEP 552: flags 0, then mtime and source size)."""
    folder, name = posixpath.split(path)
    if posixpath.basename(folder) != "__pycache__" or not name.endswith(".pyc"):
        return False
    source = posixpath.join(posixpath.dirname(folder), name.split(".", 1)[0] + ".py")
    if source not in untouched or len(data) < 16:
        return False
    flags, _mtime, size = struct.unpack_from("<III", data, 4)
    return flags == 0 and size == untouched[source] & 0xFFFFFFFF


def content_findings(path: str, data: bytes) -> Iterator[str]:
    """`where: what` for the file's own bytes and for every file inside it."""
    hashes = path not in ACCOUNT_DATABASES
    suffix = " (installer leftover)" if path.startswith(INSTALLER_FILES) else ""
    if what := cred.secrets_in(data, hashes=hashes):
        yield f"{path}: {', '.join(what)}{suffix}"
    else:  # a credential file's secrets have no shape of their own
        yield from system_file_findings(path, data)
    if path in DEBCONF_PASSWORDS:
        for name in cred.debconf_passwords(data.decode("utf-8", "replace")):
            yield f"{path}: debconf's password store holds the answer to {name}"
    for inner, content in archives.unpack(path, data):
        if posixpath.basename(inner) in ("authorized_keys", "authorized_keys2"):
            yield f"{inner}: authorized keys (a login into every clone)"
        if what := cred.secrets_in(content):
            yield f"{inner}: {', '.join(what)}"


def scan(image: OfflineImage) -> list[str]:
    """Every credential left in the image, one sorted `path: what` line each."""
    owned = package_files(image)
    verified = verify(image)  # package files as installed are skipped (shared, read once)
    entries = list(image.walk("/"))
    found = name_findings(image, [p for p, _ in entries])
    changed = set(verified.changed)
    wanted = [
        p
        for p, st in entries
        if st.is_file
        and not p.startswith(HOST_KEYS)
        and (p in changed or (not owned.owners(p) and st.size <= cred.MAX_SCAN_BYTES))
    ]
    for path, data in image.read_files(wanted):
        if len(data) <= cred.MAX_SCAN_BYTES and not compiled_from_untouched(
            path, data, verified.untouched
        ):
            found += content_findings(path, data)
    return sorted(set(found))
