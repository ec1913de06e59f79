"""Accounts as NSS returns them on the clone (`getent`: files, and any other source the image's
nsswitch.conf adds), and the owners of every file in the image.

The template documents two login accounts: root (password locked, no key) and, on a clone, the
user the seed creates. Anything else that can log in, any password, any second root is a way
into every clone.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.checks import check
from core.model import BootedVM
from validations import accounts
from validations.offline import OfflineImage
from validations.remote import ask


@pytest.fixture(scope="module")
def databases(host: Any) -> dict[str, str]:
    """The four account databases and login.defs, in one exchange."""
    answers = ask(
        host,
        {
            "passwd": "getent passwd",
            "shadow": "getent shadow",
            "group": "getent group",
            "gshadow": "getent gshadow",
            "login_defs": "cat /etc/login.defs",
        },
    )
    assert answers["passwd"].rc == 0 and "root:" in answers["passwd"].stdout, (
        f"getent passwd failed: {answers['passwd'].stderr.strip()}"
    )
    assert answers["shadow"].rc == 0 and answers["shadow"].stdout.strip(), (
        f"getent shadow printed nothing: {answers['shadow'].stderr.strip()}"
    )
    return {name: answer.stdout for name, answer in answers.items()}


@check(
    "system-shadow-locked",
    "no usable password: every account's password locked in both fields (passwd's own and "
    "shadow's) and no group password, as NSS returns them",
)
def test_shadow_locked(databases: dict[str, str]) -> None:
    found = accounts.password_findings(
        databases["passwd"], databases["shadow"], databases["group"], databases["gshadow"]
    )
    assert not found, "usable passwords:\n" + "\n".join(found)


@check(
    "accounts-identities",
    "root is the only account with UID 0 and root-equivalent groups (root, sudo, disk, shadow, "
    "docker...) have no undocumented member; no UID, GID or name is shared by two entries",
)
def test_identities(databases: dict[str, str], vm: BootedVM) -> None:
    found = accounts.identity_findings(databases["passwd"], databases["group"])
    found += accounts.privilege_findings(databases["passwd"], databases["group"], {vm.user})
    assert not found, "\n".join(found)


@check(
    "accounts-login",
    "only documented accounts can log in: no system account with a login shell, no regular "
    "account but the seed's user",
)
def test_login(databases: dict[str, str], vm: BootedVM) -> None:
    found = accounts.login_findings(databases["passwd"], databases["login_defs"], {vm.user})
    assert any(a.name == vm.user for a in accounts.accounts(databases["passwd"])), (
        f"the seed's user {vm.user} is not in getent passwd: is this the clone?"
    )
    assert not found, "accounts that can log in:\n" + "\n".join(found)


def owner_findings(image: OfflineImage) -> list[str]:
    """Files whose owner or group is no account or group of the image."""
    uids = {a.uid for a in accounts.accounts(image.read_text("/etc/passwd"))}
    gids = {int(f[2]) for f in accounts.rows(image.read_text("/etc/group"), 4) if f[2].isdigit()}
    found = []
    for path, st in image.walk("/"):
        if st.uid not in uids or st.gid not in gids:
            who = [f"owner {st.uid}" if st.uid not in uids else "",
                   f"group {st.gid}" if st.gid not in gids else ""]  # fmt: skip
            found.append(f"{path}: {' and '.join(w for w in who if w)} resolve to nothing")
    return found


@check(
    "accounts-file-owners",
    "every file's owner and group is an account and group of the image (read offline): an "
    "unowned file goes to whoever is next given that id",
)
def test_file_owners(image: OfflineImage) -> None:
    assert image.exists("/etc/passwd"), "no /etc/passwd: is this the root filesystem?"
    found = owner_findings(image)
    assert not found, f"{len(found)} files owned by nobody:\n" + "\n".join(found[:40])


@check(
    "accounts-umask",
    "what users and root create is not writable by others: the umask of an interactive login "
    "over SSH and of sudo -i (PAM's pam_umask and login.defs, profile and bashrc files, sudo's "
    "own), and the mode of the homes cloud-init's useradd and adduser make",
)
def test_umask(host: Any, vm: BootedVM) -> None:
    # As the seed's user, from the SSH session (sshd's PAM session set its umask): an
    # interactive login shell applies every start-up file on top, as a person's login does.
    # One exchange; nothing here needs root (sudo -i is how an operator becomes root).
    answers = ask(
        host,
        {
            "login": "bash -lic umask </dev/null",
            "root": "sudo -n -i bash -ic umask </dev/null",
            "home": f"stat -c %a ~{vm.user}",
            # EL's adduser is a link to useradd (whose homes the seed's user shows)
            "adduser": "if [ -x /usr/sbin/adduser ] && [ ! -L /usr/sbin/adduser ]; then "
            "cat /etc/adduser.conf 2>/dev/null; echo; else echo none; fi",
        },
        sudo=False,
    )
    home = answers["home"].stdout.strip()
    homes: dict[str, int | None] = {
        f"{vm.user}'s home (cloud-init's useradd)": int(home, 8) if home.isdigit() else None
    }
    if answers["adduser"].stdout.strip() != "none":
        homes["the homes adduser makes (adduser.conf DIR_MODE)"] = accounts.adduser_dir_mode(
            answers["adduser"].stdout
        )
    found = accounts.umask_findings(
        vm.user,
        accounts.last_umask(answers["login"].stdout),
        accounts.last_umask(answers["root"].stdout),
        homes,
    )
    assert not found, "new files and homes are writable by others:\n" + "\n".join(found)
