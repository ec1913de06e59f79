"""Every home folder of an image: where a user's files, histories and credentials live.

/root, /home/*, each account's home that exists, and /etc/skel, which useradd and cloud-init
copy into every new home (so whatever it holds, every user the clone creates gets).
"""

from __future__ import annotations

import posixpath

from validations import credentials as cred
from validations.offline import OfflineImage

SYSTEM_HOMES = ("/", "/nonexistent", "/dev", "/dev/null", "/bin", "/sbin", "/usr/sbin", "/usr/bin")


def homes(image: OfflineImage) -> list[str]:
    """Every home folder in the image, /etc/skel included."""
    found = ["/root", "/etc/skel"]
    if image.exists("/home"):
        found += [f"/home/{n}" for n in image.listdir("/home")]
    passwd = image.read_text("/etc/passwd") if image.exists("/etc/passwd") else ""
    for fields in cred.account_rows(passwd).values():
        home = posixpath.normpath(fields[5]) if len(fields) > 5 and fields[5] else ""
        if home and home not in SYSTEM_HOMES and home not in found:
            found.append(home)
    return [h for h in found if image.exists(h) and image.stat(h).is_dir]
