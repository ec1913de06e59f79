"""The account databases as NSS returns them (`getent`), judged as login(1), su and sshd would
use them: both password fields, who is root, who can log in.

A password hash in /etc/passwd's own second field is a password (the `x` that sends the reader
to /etc/shadow is not), an empty field is no password at all; a second account with UID 0 is
root under another name; a system account with a shell is a login nobody meant. Pure: the
checks pass `getent` output.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from validations.credentials import password_problem

# Shells that refuse a login. `sync` (/bin/sync) runs sync(1) and exits: Debian's own account.
NO_LOGIN_SHELLS = frozenset(
    {"/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync"}
)
DEFAULT_UID_MIN = 1000  # login.defs' UID_MIN on Debian, Ubuntu and EL
NOBODY = frozenset({"nobody", "nfsnobody"})
# Membership in these is root, or a short step from it (raw disks, /etc/shadow, the container
# and VM daemons' sockets, the admin groups sudo grants).
ROOT_EQUIVALENT_GROUPS = frozenset(
    {
        "root", "sudo", "wheel", "admin", "disk", "shadow", "kmem", "docker", "lxd",
        "incus-admin", "libvirt", "microk8s",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    uid: int
    gid: int
    home: str
    shell: str

    @property
    def login_shell(self) -> bool:
        """An empty shell field means /bin/sh to login(1) and sshd."""
        return (self.shell or "/bin/sh") not in NO_LOGIN_SHELLS


def rows(getent: str, width: int) -> list[list[str]]:
    """`getent passwd|group|shadow|gshadow` lines split, short or commented lines dropped."""
    out = []
    for line in getent.splitlines():
        fields = line.split(":")
        if line.strip() and not line.startswith("#") and len(fields) >= width:
            out.append(fields)
    return out


def accounts(passwd: str) -> list[Account]:
    out = []
    for f in rows(passwd, 7):
        if f[2].lstrip("-").isdigit() and f[3].lstrip("-").isdigit():
            out.append(Account(f[0], f[1], int(f[2]), int(f[3]), f[5], f[6]))
    return out


def uid_min(login_defs: str) -> int:
    for line in login_defs.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "UID_MIN" and words[1].isdigit():
            return int(words[1])
    return DEFAULT_UID_MIN


def password_findings(passwd: str, shadow: str, group: str, gshadow: str) -> list[str]:
    """Every usable password in the four databases, by account: a hash or an empty field."""
    found = []
    for kind, text, width in (
        ("passwd", passwd, 7),
        ("shadow", shadow, 2),
        ("group", group, 4),
        ("gshadow", gshadow, 2),
    ):
        for f in rows(text, width):
            problem = password_problem(f[1], kind)
            if problem:
                found.append(f"{f[0]}: {kind} has {problem}")
    return found


def identity_findings(passwd: str, group: str) -> list[str]:
    """Root under other names, and names or ids that two entries share."""
    found = []
    users = accounts(passwd)
    roots = [a.name for a in users if a.uid == 0]
    if roots != ["root"]:
        extra = [n for n in roots if n != "root"]
        found.append(
            f"UID 0 belongs to {', '.join(roots) or 'nobody'}"
            + (f": {', '.join(extra)} is root under another name" if extra else "")
        )
    for label, items in (
        ("UID", [(str(a.uid), a.name) for a in users]),
        ("user name", [(a.name, a.name) for a in users]),
        ("GID", [(f[2], f[0]) for f in rows(group, 4)]),
        ("group name", [(f[0], f[0]) for f in rows(group, 4)]),
    ):
        seen: dict[str, list[str]] = defaultdict(list)
        for key, name in items:
            seen[key].append(name)
        for key, names in sorted(seen.items()):
            if len(names) > 1 and not (label == "UID" and key == "0"):
                found.append(f"{label} {key} is shared by {', '.join(names)}")
    return found


def members(passwd: str, group: str) -> dict[str, set[str]]:
    """Every group's members: listed in /etc/group or having it as primary group."""
    by_gid = {f[2]: f[0] for f in rows(group, 4)}
    out: dict[str, set[str]] = {f[0]: {m for m in f[3].split(",") if m} for f in rows(group, 4)}
    for a in accounts(passwd):
        name = by_gid.get(str(a.gid))
        if name is not None:
            out[name].add(a.name)
    return out


def privilege_findings(passwd: str, group: str, documented: set[str]) -> list[str]:
    """Members of root-equivalent groups other than root and the documented accounts."""
    found = []
    for name, people in sorted(members(passwd, group).items()):
        if name not in ROOT_EQUIVALENT_GROUPS:
            continue
        extra = sorted(people - documented - {"root"})
        if extra:
            found.append(f"group {name} (root-equivalent) has members {', '.join(extra)}")
    return found


def login_findings(passwd: str, login_defs: str, documented: set[str]) -> list[str]:
    """Accounts that can start a login shell although the template does not document them:
    any system account but root with a shell, any regular account but the documented ones."""
    first_user = uid_min(login_defs)
    found = []
    for a in accounts(passwd):
        if a.name in documented or a.name == "root" or a.name in NOBODY:
            continue
        if a.uid < first_user and a.login_shell:
            found.append(
                f"{a.name} (system UID {a.uid}) has the login shell {a.shell or '/bin/sh'}"
            )
        elif a.uid >= first_user:
            found.append(
                f"{a.name} (UID {a.uid}) is a regular account the template does not document"
                + ("" if a.login_shell else f" (shell {a.shell})")
            )
    return found


# -- default modes of what users create ------------------------------------------------------------

_UMASK = re.compile(r"^0?[0-7]{3}$")
_DIR_MODE = re.compile(r"^\s*DIR_MODE\s*=\s*[\"']?([0-7]{3,4})[\"']?\s*(?:#.*)?$", re.M)
ADDUSER_DIR_MODE = 0o700  # adduser's default since Debian 12 (3.130) when adduser.conf is silent


def umask_lets_others_write(mask: int, root: bool) -> bool:
    """The policy for every umask: root's must keep group and others from writing what it
    creates, anyone else's others (group writes are Debian's user-private-group default)."""
    kept_out = 0o022 if root else 0o002
    return mask & kept_out != kept_out


def last_umask(output: str) -> int | None:
    """The last line of `umask`'s output that is an octal mask (start-up files may print)."""
    masks = [ln.strip() for ln in output.splitlines() if _UMASK.match(ln.strip())]
    return int(masks[-1], 8) if masks else None


def adduser_dir_mode(adduser_conf: str) -> int:
    """The mode adduser gives new homes: adduser.conf's last DIR_MODE, else its default."""
    found = _DIR_MODE.findall(adduser_conf)
    return int(found[-1], 8) if found else ADDUSER_DIR_MODE


def umask_findings(
    user: str, user_umask: int | None, root_umask: int | None, homes: Mapping[str, int | None]
) -> list[str]:
    """What the clone makes writable by others: a user's login umask that lets others write
    (group writes are Debian's user-private-group default), root's that lets group or others
    write, and homes (`where` -> mode) writable by group or others, where anyone could plant a
    start-up file or an authorized_keys."""
    found = []
    if user_umask is None:
        found.append(f"{user}'s login shell printed no umask")
    elif umask_lets_others_write(user_umask, root=False):
        found.append(f"{user}'s login umask is {user_umask:04o}: every file they make is "
                     "writable by everyone")  # fmt: skip
    if root_umask is None:
        found.append("sudo -i printed no umask (does the seed's user have sudo?)")
    elif umask_lets_others_write(root_umask, root=True):
        found.append(f"root's umask under sudo -i is {root_umask:04o}: the files root makes are "
                     "writable by others than root")  # fmt: skip
    for where, mode in homes.items():
        if mode is None:
            found.append(f"{where}: no mode read")
        elif mode & 0o022:
            found.append(f"{where}: mode {mode:04o}, writable by group or others")
    return found
