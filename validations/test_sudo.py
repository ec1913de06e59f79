"""sudo's effective policy on the clone, read by sudo's own parser.

`cvtsudoers -f json /etc/sudoers` follows every @include and @includedir the way sudo does
(a grant pulled in from a file outside /etc/sudoers.d counts like any other); cloud-init's
file for the seed's user is read on its own so that exactly its grant is allowed.
"""

from __future__ import annotations

from typing import Any

from core.checks import check
from validations import sudo
from validations.remote import ask

CLOUD_INIT_SUDOERS = "/etc/sudoers.d/90-cloud-init-users"


@check(
    "sudo-policy",
    "sudo's parsed policy (the file sudo.conf names) grants root only to root and the admin "
    "groups with a password (and to the seed's user as cloud-init wrote it); no Defaults that "
    "switch authentication off, no other policy source or root-granting tool",
)
def test_policy(host: Any) -> None:
    answers = ask(
        host,
        {
            # the file sudo.conf tells the sudoers plugin to read, /etc/sudoers by default
            "policy": 'f=$(sed -n "s/^[[:space:]]*Plugin[[:space:]]\\{1,\\}sudoers_policy.*'
            'sudoers_file=\\([^[:space:]]*\\).*/\\1/p" /etc/sudo.conf 2>/dev/null | head -n 1); '
            'cvtsudoers -f json "${f:-/etc/sudoers}"',
            "sudo_conf": "cat /etc/sudo.conf 2>/dev/null; true",
            "nsswitch": "grep -E '^[[:space:]]*sudoers[[:space:]]*:' /etc/nsswitch.conf; true",
            "doas": "ls /etc/doas.conf /usr/local/etc/doas.conf 2>/dev/null; true",
            "seed": f"[ -f {CLOUD_INIT_SUDOERS} ] && cvtsudoers -f json {CLOUD_INIT_SUDOERS}"
            " || echo '{}'",
            "visudo": "visudo -c",
        },
    )
    policy = answers["policy"]
    assert policy.rc == 0, (
        f"sudo's parser refuses the policy (so sudo would too): "
        f"{(policy.stderr or answers['visudo'].stdout).strip()[-400:]}"
    )
    found = sudo.front_end_findings(
        answers["sudo_conf"].stdout, answers["nsswitch"].stdout, answers["doas"].stdout
    )
    found += sudo.policy_findings(sudo.load(policy.stdout), sudo.load(answers["seed"].stdout))
    assert sudo.grants(sudo.load(policy.stdout)), (
        "cvtsudoers reports no grant at all, not even root's"
    )
    assert not found, "sudo grants more than the template's policy:\n" + "\n".join(found)
